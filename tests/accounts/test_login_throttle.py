"""Login throttling (django-axes): a username is locked from one address after repeated
wrong passwords; other addresses and other usernames are not; the lock says so."""

import pytest
from django.test import Client

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def throttling(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in(username: str, password: str, ip: str = "203.0.113.7", **headers):
    return Client(REMOTE_ADDR=ip, **headers).post(
        "/accounts/login/", {"username": username, "password": password}
    )


def test_wrong_passwords_lock_that_username_from_that_address():
    person = UserFactory()
    for _ in range(3):
        assert log_in(person.username, "wrong").status_code in (200, 429)
    locked = log_in(person.username, PASSWORD)  # even the right password now
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in locked.wsgi_request.session


def test_the_lock_is_per_username_and_address():
    person, someone_else = UserFactory(), UserFactory()
    for _ in range(3):
        log_in(person.username, "wrong")
    assert log_in(person.username, PASSWORD, ip="198.51.100.9").status_code == 302
    assert log_in(someone_else.username, PASSWORD).status_code == 302


def test_a_successful_login_forgets_earlier_failures():
    person = UserFactory()
    for _ in range(2):
        log_in(person.username, "wrong")
    assert log_in(person.username, PASSWORD).status_code == 302
    for _ in range(2):
        log_in(person.username, "wrong")
    assert log_in(person.username, PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too():
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(3):
        client.post("/admin/login/", {"username": admin.username, "password": "wrong"})
    response = client.post("/admin/login/", {"username": admin.username, "password": PASSWORD})
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    person = UserFactory()
    proxy = "10.0.0.2"  # every request arrives from the proxy
    for _ in range(3):
        log_in(person.username, "wrong", ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.50")
    locked = log_in(person.username, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert locked.status_code == 429
    other_client = log_in(person.username, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert other_client.status_code == 302


def test_password_validators_refuse_weak_passwords():
    response = Client().post(
        "/accounts/signup/",
        {"username": "newcomer", "password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert b"This password is too common." in response.content
