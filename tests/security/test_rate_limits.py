"""Rate limits on login, sign-up and the costly views: 429 with a clear message and a
Retry-After, per client address (login, sign-up) or per user (the rest)."""

import os

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chatsite import ratelimit
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_windows():
    ratelimit.reset()
    yield
    ratelimit.reset()


def assert_limited(response, window: int = 60) -> None:
    assert response.status_code == 429
    assert b"Too many requests" in response.content
    assert f"Please wait {response['Retry-After']} second".encode() in response.content
    assert 1 <= int(response["Retry-After"]) <= window


def test_login_attempts_are_limited_per_address(settings):
    settings.RATE_LIMIT_LOGIN = "3/minute"
    client = Client(REMOTE_ADDR="203.0.113.10")
    for n in range(3):
        response = client.post("/accounts/login/", {"username": f"guess{n}", "password": "x"})
        assert response.status_code == 200  # the form, with its error
    assert_limited(client.post("/accounts/login/", {"username": "guess9", "password": "x"}))
    assert client.get("/accounts/login/").status_code == 200  # showing the form is free
    other = Client(REMOTE_ADDR="203.0.113.11")
    assert other.post("/accounts/login/", {"username": "a", "password": "b"}).status_code == 200


def test_sign_ups_are_limited_per_address(settings):
    settings.RATE_LIMIT_SIGNUP = "2/hour"
    for n in range(2):
        response = Client(REMOTE_ADDR="203.0.113.20").post(
            "/accounts/signup/",
            {
                "username": f"new{n}",
                "password1": "a-long-unusual-pw",
                "password2": "a-long-unusual-pw",
            },
        )
        assert response.status_code == 302
    assert_limited(
        window=3600,
        response=Client(REMOTE_ADDR="203.0.113.20").post(
            "/accounts/signup/",
            {
                "username": "new9",
                "password1": "a-long-unusual-pw",
                "password2": "a-long-unusual-pw",
            },
        ),
    )


def test_a_forged_forwarded_for_does_not_buy_new_attempts(settings):
    settings.RATE_LIMIT_LOGIN = "2/minute"
    settings.TRUSTED_PROXY_COUNT = 0  # no proxy in front: the header is the client's to forge
    for n in range(2):
        Client(REMOTE_ADDR="203.0.113.30", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").post(
            "/accounts/login/", {"username": "a", "password": "b"}
        )
    forged = Client(REMOTE_ADDR="203.0.113.30", HTTP_X_FORWARDED_FOR="10.9.9.99")
    assert_limited(forged.post("/accounts/login/", {"username": "a", "password": "b"}))


def costly_requests(conversation):
    upload = SimpleUploadedFile("notes.md", b"# Notes\n", content_type="text/markdown")
    return {
        "search": ("get", "/search/", {"q": "anything"}),
        "export markdown": ("get", f"/c/{conversation.pk}/export.md", {}),
        "export json": ("get", f"/c/{conversation.pk}/export.json", {}),
        "document upload": ("post", f"/c/{conversation.pk}/document/", {"document": upload}),
        "my data": ("get", "/accounts/profile/data.json", {}),
    }


@pytest.mark.parametrize(
    "view", ["search", "export markdown", "export json", "document upload", "my data"]
)
def test_costly_views_are_limited_per_user(settings, view):
    settings.RATE_LIMIT_COSTLY = "2/minute"
    user, other = UserFactory(), UserFactory()
    conversation = ConversationFactory(user=user)
    client = Client()
    client.force_login(user)
    for _ in range(2):
        method, url, data = costly_requests(conversation)[view]
        assert getattr(client, method)(url, data).status_code in (200, 302)
    method, url, data = costly_requests(conversation)[view]
    assert_limited(getattr(client, method)(url, data))

    someone_else = Client()
    someone_else.force_login(other)
    assert someone_else.get("/search/", {"q": "x"}).status_code == 200


def test_an_empty_setting_means_no_limit(settings):
    settings.RATE_LIMIT_COSTLY = ""
    user = UserFactory()
    client = Client()
    client.force_login(user)
    assert all(client.get("/search/", {"q": "x"}).status_code == 200 for _ in range(30))


def redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/9"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


def forget_windows(url: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("chatsite-view-limits*"):
        client.delete(key)


def test_with_redis_every_process_shares_the_window(settings):
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on loopback")
    forget_windows(url)
    settings.REDIS_URL = url
    settings.RATE_LIMIT_SIGNUP = "1/hour"
    ratelimit.reset()
    data = {
        "username": "shared0",
        "password1": "a-long-unusual-pw",
        "password2": "a-long-unusual-pw",
    }
    assert Client(REMOTE_ADDR="203.0.113.40").post("/accounts/signup/", data).status_code == 302
    ratelimit.reset()  # a second process: a new limiter on the same Redis
    data["username"] = "shared1"
    assert_limited(Client(REMOTE_ADDR="203.0.113.40").post("/accounts/signup/", data), 3600)
    forget_windows(url)
