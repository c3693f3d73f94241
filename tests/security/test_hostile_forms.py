"""Hostile form input: fuzzed sign-up, rename, settings, document upload and search never
answer 500, and what is refused is refused with a clear message."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from conversations.models import Conversation
from tests.factories import ConversationFactory

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Text a browser could send, plus the awkward: control characters, NUL, long strings.
awkward_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(["", " ", "\x00", "\x00abc", "\u202e", "a" * 5000, "<script>x</script>"]),
)
# Raw request bodies: any bytes, invalid UTF-8 included.
raw_bodies = st.binary(max_size=400)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@FUZZ
@given(
    username=awkward_text,
    email=awkward_text,
    password1=awkward_text,
    password2=awkward_text,
)
def test_fuzzed_sign_up_never_errors(username, email, password1, password2):
    response = Client().post(
        "/accounts/signup/",
        {"username": username, "email": email, "password1": password1, "password2": password2},
    )
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert User.objects.filter(username=username.strip()).exists()


@pytest.mark.django_db
@FUZZ
@given(title=awkward_text)
def test_fuzzed_rename_never_errors_and_never_blanks_a_title(user, title):
    conversation = ConversationFactory(user=user, title="Before")
    response = signed_in(user).post(f"/c/{conversation.pk}/rename/", {"title": title})
    assert response.status_code in (302, 400)
    conversation.refresh_from_db()
    assert conversation.title.strip()
    assert "\x00" not in conversation.title
    assert len(conversation.title) <= 200
    if response.status_code == 400:
        assert conversation.title == "Before"
        assert response.content.decode().strip()  # says why


@pytest.mark.django_db
@FUZZ
@given(
    model=awkward_text,
    preset=awkward_text,
    system_prompt=awkward_text,
    max_tokens=st.one_of(awkward_text, st.integers().map(str)),
)
def test_fuzzed_settings_never_error(user, model, preset, system_prompt, max_tokens):
    conversation = ConversationFactory(user=user)
    response = signed_in(user).post(
        f"/c/{conversation.pk}/settings/",
        {"model": model, "preset": preset, "system_prompt": system_prompt}
        | {"max_tokens": max_tokens},
    )
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert b"errorlist" in response.content  # the form says what is wrong


@pytest.mark.django_db
@FUZZ
@given(name=awkward_text, content=st.binary(max_size=2000))
def test_fuzzed_document_upload_never_errors(user, name, content):
    conversation = ConversationFactory(user=user)
    if os.path.basename(name) in {"", ".", ".."}:
        name = "x"  # Django cannot build an upload with no file name in it ("/", "a/..")
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    response = signed_in(user).post(f"/c/{conversation.pk}/document/", {"document": upload})
    assert response.status_code in (302, 400)
    conversation.refresh_from_db()
    if response.status_code == 302:
        assert conversation.document_text.strip()
        assert "\x00" not in conversation.document_text
    else:
        assert conversation.document_text == ""


@pytest.mark.django_db
@FUZZ
@given(body=raw_bodies)
def test_raw_bodies_with_invalid_utf8_never_error(user, body):
    conversation = ConversationFactory(user=user)
    client = signed_in(user)
    form = "application/x-www-form-urlencoded"
    for url in (f"/c/{conversation.pk}/rename/", f"/c/{conversation.pk}/settings/"):
        assert client.post(url, body, content_type=form).status_code in (302, 400), url
    assert Client().post("/accounts/signup/", body, content_type=form).status_code in (200, 302)


@pytest.mark.django_db
@FUZZ
@given(query=awkward_text)
def test_fuzzed_search_never_errors(user, query):
    ConversationFactory(user=user, title="Searchable title")
    assert signed_in(user).get("/search/", {"q": query}).status_code == 200


@pytest.mark.django_db
def test_a_document_that_is_not_utf8_is_refused_clearly(user):
    conversation = ConversationFactory(user=user)
    upload = SimpleUploadedFile("notes.txt", b"caf\xe9 \xff\xfe", content_type="text/plain")
    response = signed_in(user).post(f"/c/{conversation.pk}/document/", {"document": upload})
    assert response.status_code == 400
    assert b"not UTF-8 text" in response.content


@pytest.mark.django_db
def test_a_document_over_the_limit_is_refused_clearly(user, settings):
    settings.DOCUMENT_MAX_BYTES = 100
    conversation = ConversationFactory(user=user)
    upload = SimpleUploadedFile("big.md", b"x" * 101, content_type="text/markdown")
    response = signed_in(user).post(f"/c/{conversation.pk}/document/", {"document": upload})
    assert response.status_code == 400
    assert b"101 bytes; the limit is 100 bytes" in response.content


@pytest.mark.django_db
def test_a_request_body_over_the_upload_limit_is_refused_not_crashed(user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    conversation = ConversationFactory(user=user)
    response = signed_in(user).post(
        f"/c/{conversation.pk}/settings/", {"system_prompt": "x" * 20_000}
    )
    assert response.status_code == 400
    assert Conversation.objects.get(pk=conversation.pk).system_prompt == ""
