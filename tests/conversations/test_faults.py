"""The fault matrix: each upstream failure, what the user sees and what is kept."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.generations import generations
from fakeanthropic import Scripted
from tests.factories import ConversationFactory
from tests.sockets import collect_reply, open_socket, send_text

pytestmark = pytest.mark.django_db(transaction=True)

OK_TEXT = "Recovered and answered in full."
LONG = "word " * 60


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


async def chat_once(user, text="Hello there"):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, text)
    result = await collect_reply(communicator)
    await communicator.disconnect()
    messages = [m async for m in conversation.messages.order_by("id")]
    return result, messages


FAULTS = {
    # name: (script, expected status, expected error kind, expected text, upstream attempts)
    "429_with_retry_after_then_ok": (
        [Scripted(status=429, retry_after=0.05), Scripted(text=OK_TEXT)],
        "complete", "", OK_TEXT, 2,
    ),
    "500_then_ok": ([Scripted(status=500), Scripted(text=OK_TEXT)], "complete", "", OK_TEXT, 2),
    "503_every_time": ([Scripted(status=503)] * 3, "failed", "server_error", "", 3),
    "529_every_time": ([Scripted(status=529)] * 3, "failed", "overloaded", "", 3),
    "401_is_not_retried": ([Scripted(status=401)], "failed", "authentication", "", 1),
    "400_is_not_retried": ([Scripted(status=400)], "failed", "bad_request", "", 1),
    "overload_mid_stream_after_text": (
        [Scripted(text=LONG, error_after_tokens=6)], "interrupted", "overloaded", None, 1,
    ),
    "overload_before_any_text_is_retried": (
        [Scripted(text=LONG, error_after_tokens=0), Scripted(text=OK_TEXT)],
        "complete", "", OK_TEXT, 2,
    ),
    "stall_trips_the_timeout": ([Scripted(stall=True)] * 3, "failed", "timeout", "", 3),
    "dropped_connection_mid_stream": (
        [Scripted(text=LONG, drop_after_tokens=6)], "interrupted", "connection", None, 1,
    ),
}  # fmt: skip

USER_SEES = {
    "server_error": "Claude had an internal error",
    "overloaded": "Claude is overloaded",
    "authentication": "API key is misconfigured",
    "bad_request": "could not accept this request",
    "timeout": "took too long",
    "connection": "could not be reached",
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
async def test_fault(fault, user, fake_api, settings):
    script, status, kind, text, attempts = FAULTS[fault]
    settings.CLAUDE_MAX_RETRIES = 2
    settings.CLAUDE_TIMEOUT = 0.5
    fake_api.script(*script)

    result, messages = await chat_once(user, "Please answer")

    user_message, reply = messages
    assert user_message.content == "Please answer"  # the user's message is never lost
    assert reply.status == status
    assert reply.error_kind == kind
    assert len(fake_api.requests) == attempts
    if text is None:  # cut off mid-stream: the partial text is kept and was shown
        assert reply.content and LONG.startswith(reply.content)
        assert "".join(result["deltas"]) == reply.content
    else:
        assert reply.content == text
    if kind:
        assert USER_SEES[kind] in result["final"]
        assert "Traceback" not in result["final"]
    if status in ("interrupted", "failed"):
        assert "Regenerate" in result["final"]


async def test_too_long_retry_after_fails_at_once_with_a_clear_message(user, fake_api, settings):
    settings.CLAUDE_RETRY_AFTER_MAX = 5
    fake_api.script(Scripted(status=429, retry_after=60))
    result, (_, reply) = await chat_once(user)
    assert reply.status == "failed"
    assert reply.error_kind == "rate_limited"
    assert len(fake_api.requests) == 1
    assert "rate limiting" in result["final"]
