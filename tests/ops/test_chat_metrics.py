"""A scripted chat through the real socket moves the metrics, the log and the panel's window."""

import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.generations import generations
from conversations.models import Message
from fakeanthropic import Scripted
from ops import window
from tests.factories import ConversationFactory
from tests.ops.conftest import METRICS_TOKEN, sample
from tests.sockets import collect_reply, open_socket, send_text

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-4-6"


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


async def scrape(async_client) -> str:
    response = await async_client.get(
        "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    return response.content.decode()


async def chat_turn(user, text: str) -> Message:
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, text)
    result = await collect_reply(communicator)
    await communicator.disconnect()
    await generations.wait_all()
    return await Message.objects.aget(pk=result["reply_id"])


async def test_a_scripted_chat_moves_the_metrics(user, fake_api, async_client, metrics_token):
    before = await scrape(async_client)
    fake_api.script(Scripted(text="A counted reply.", output_tokens=9))
    reply = await chat_turn(user, "Count this")
    after = await scrape(async_client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert reply.status == Message.Status.COMPLETE
    assert delta("chatsite_claude_tokens_total", model=MODEL, kind="output") == 9
    assert delta("chatsite_claude_tokens_total", model=MODEL, kind="input") == reply.input_tokens
    assert delta("chatsite_claude_calls_total", model=MODEL, status="complete", purpose="chat") == 1
    assert delta("chatsite_claude_ttft_seconds_count", model=MODEL) == 1
    assert delta("chatsite_claude_duration_seconds_count", model=MODEL) == 1
    assert sample(after, "chatsite_active_streams") == sample(before, "chatsite_active_streams")


async def test_a_failed_chat_counts_an_error_of_its_kind(
    user, fake_api, async_client, metrics_token
):
    before = await scrape(async_client)
    fake_api.script(Scripted(status=400, error_message="bad"))
    reply = await chat_turn(user, "This will fail")
    after = await scrape(async_client)

    kind = {"kind": "bad_request"}
    assert reply.error_kind == "bad_request"
    assert sample(after, "chatsite_claude_errors_total", **kind) == (
        sample(before, "chatsite_claude_errors_total", **kind) + 1
    )
    [failure] = window.recent_failures()
    assert failure["error_kind"] == "bad_request"
    assert failure["model"] == MODEL


async def test_the_call_is_logged_with_its_ids(user, fake_api, caplog):
    caplog.set_level(logging.INFO, logger="ops.calls")
    fake_api.script(Scripted(text="Logged.", output_tokens=4))
    reply = await chat_turn(user, "Log this")

    [event] = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert event["event"] == "claude.call"
    assert event["request_id"] == reply.request_id
    assert event["user_id"] == user.pk
    assert event["conversation_id"] == reply.conversation_id
    assert event["output_tokens"] == 4
    assert event["status"] == "complete"
    assert event["stop_reason"] == "end_turn"
    assert event["ttft_ms"] is not None and event["duration_ms"] >= event["ttft_ms"]


async def test_the_call_is_logged_even_when_saving_the_reply_breaks(
    user, fake_api, caplog, monkeypatch
):
    """The log record rides in the settlement's ORM call (one hop fewer): a bug there must
    not lose the record of a call that was made and billed by Anthropic."""
    from conversations import turns

    def broken(*args, **kwargs):
        raise RuntimeError("settlement bug")

    monkeypatch.setattr(turns, "_finish_turn", broken)
    caplog.set_level(logging.INFO, logger="ops.calls")
    fake_api.script(Scripted(text="Logged anyway.", output_tokens=3))
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, "Log this too")
    await collect_reply(communicator)  # the final frame goes whatever happened
    await generations.wait_all()
    await communicator.disconnect()

    [event] = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert event["event"] == "claude.call"
    assert event["status"] == "complete"
    assert event["output_tokens"] == 3
    assert event["cost_usd"] is None  # no ledger row was written
