"""Structured logs: JSON lines with request and user ids; never keys or message content."""

import io
import json
import logging

import pytest
import structlog
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.generations import generations
from fakeanthropic import Scripted
from ops.logs import console_formatter, json_formatter
from tests.conftest import TEST_API_KEY
from tests.factories import ConversationFactory, UserFactory
from tests.sockets import collect_reply, open_socket, send_text

USER_TEXT = "My locker code is PERIWINKLE-7781, keep it safe"
REPLY_TEXT = "Noted: TANGERINE-4410 is what I will not repeat."
OTHER_KEY = "sk-ant-api03-Zx9_unrelated-key-0000"


def configured_handler() -> logging.Handler:
    """The root handler settings.LOGGING installed (stdout, with the redact filter)."""
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    return handler


@pytest.fixture
def log_output():
    """Everything logged through the app's real formatter and filters, as text."""
    real = configured_handler()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(real.formatter)
    for log_filter in real.filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)  # an operator's LOG_LEVEL=DEBUG must not leak either
    yield stream.getvalue
    root.setLevel(level)
    root.removeHandler(handler)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.django_db(transaction=True)
async def test_a_chat_turn_logs_neither_the_key_nor_the_messages(user, fake_api, log_output):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text=REPLY_TEXT))
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, USER_TEXT)
    result = await collect_reply(communicator)
    await communicator.disconnect()
    await generations.wait_all()
    # Careless code during the call, by every route a line can take:
    logging.getLogger("conversations").warning("calling with key %s", TEST_API_KEY)
    structlog.get_logger("conversations").info("client built", api_key=TEST_API_KEY)
    try:
        raise RuntimeError(f"auth failed for {OTHER_KEY}")
    except RuntimeError:
        logging.getLogger("conversations").exception("call failed")
    await sync_to_async(connections.close_all)()

    output = log_output()
    assert "".join(result["deltas"]) == REPLY_TEXT  # the call really happened
    assert f"reply {result['reply_id']}" in output  # and was logged during the turn
    assert output.count("[REDACTED]") >= 3
    for secret in (TEST_API_KEY, OTHER_KEY, "sk-ant-", "PERIWINKLE", "TANGERINE"):
        assert secret not in output, secret


def test_json_lines_carry_level_logger_time_and_fields():
    record = logging.LogRecord("chatsite.test", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    line = json.loads(json_formatter().format(record))
    assert line["event"] == "hello x"
    assert line["level"] == "info"
    assert line["logger"] == "chatsite.test"
    assert line["timestamp"].endswith("Z")


def test_console_lines_are_readable_and_redacted():
    record = logging.LogRecord(
        "chatsite.test", logging.WARNING, __file__, 1, "key %s", (OTHER_KEY,), None
    )
    line = console_formatter().format(record)
    assert "key [REDACTED]" in line
    assert "warning" in line
    assert not line.startswith("{")


@pytest.mark.django_db
def test_request_id_is_echoed_and_bound_to_the_request_log(client, log_output):
    user = UserFactory()
    client.force_login(user)
    response = client.get("/no-such-page/", headers={"x-request-id": "edge-abc.123"})
    assert response.status_code == 404
    assert response["X-Request-ID"] == "edge-abc.123"
    [line] = [e for e in json_lines(log_output()) if e["logger"] == "django.request"]
    assert line["request_id"] == "edge-abc.123"
    assert line["user_id"] == user.pk
    assert line["level"] == "warning"


@pytest.mark.django_db
def test_each_request_is_logged_once_with_status_and_duration(client, log_output):
    user = UserFactory()
    client.force_login(user)
    client.get("/?page=2&secret=x", headers={"x-request-id": "access-1"})
    [line] = [e for e in json_lines(log_output()) if e["event"] == "http.request"]
    assert line["request_id"] == "access-1"
    assert line["user_id"] == user.pk
    assert (line["method"], line["path"], line["status"]) == ("GET", "/", 200)
    assert line["level"] == "info"
    assert isinstance(line["duration_ms"], int)


def test_a_request_without_an_id_gets_a_fresh_one(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_a_forged_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"x-request-id": 'x"}\n{"level":"critical'})
    assert response["X-Request-ID"] != 'x"}\n{"level":"critical'
    assert len(response["X-Request-ID"]) == 32


def test_log_context_does_not_leak_between_requests(client, log_output):
    client.get("/healthz", headers={"x-request-id": "first-request"})
    logging.getLogger("chatsite.test").info("after the request")
    [line] = [e for e in json_lines(log_output()) if e["event"] == "after the request"]
    assert "request_id" not in line
