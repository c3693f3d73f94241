"""Stop, regenerate, continue, catch-up, breaker, fallback and rate limits, via the socket."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import connections

from conversations.claude import breaker
from conversations.generations import generations
from conversations.models import Message
from conversations.recovery import sweep_orphaned_replies
from fakeanthropic import Scripted
from tests.factories import ConversationFactory, MessageFactory
from tests.sockets import DELTA_RE, collect_reply, open_socket, plain, send_text

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = Scripted(text="slow " * 200, tokens_per_second=40)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


async def until(predicate, within=5.0):
    """Wait for a condition to hold (polling an in-process flag, not sleeping blindly)."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def first_delta(communicator):
    while True:
        frame = await communicator.receive_from(timeout=5)
        if DELTA_RE.search(frame):
            return frame


async def test_stop_cancels_upstream_and_keeps_partial_reply(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(SLOW)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Go on and on")
    await first_delta(communicator)
    assert fake_api.in_flight == 1

    await communicator.send_json_to({"type": "stop"})
    final = ""
    while 'data-status="stopped"' not in final:
        final = await communicator.receive_from(timeout=5)
    await communicator.disconnect()

    await until(lambda: fake_api.in_flight == 0, within=2)
    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.status == "stopped"
    assert reply.content and reply.content != SLOW.text
    assert SLOW.text.startswith(reply.content)
    assert "Continue" in final and "Regenerate" in final


async def test_reply_survives_socket_drop_and_reconnect_catches_up(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    text = "steady " * 60
    fake_api.script(Scripted(text=text, tokens_per_second=120))
    first, _, _ = await open_socket(user, conversation.pk)
    await send_text(first, "Tell me")
    await first_delta(first)
    await first.disconnect()  # the tab closes mid-stream

    second, _, _ = await open_socket(user, conversation.pk)
    snapshot = await second.receive_from(timeout=5)
    assert "innerHTML:#message-" in snapshot  # what was generated so far
    seen = snapshot.split(">", 1)[1].rsplit("</div>", 1)[0]
    rest = []
    while True:
        frame = await second.receive_from(timeout=10)
        rest += [t for _, t in DELTA_RE.findall(frame)]
        if frame.startswith("<article"):
            break
    await second.disconnect()

    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.status == "complete"
    assert reply.content == text
    assert seen + "".join(rest) == text


async def test_regenerate_writes_a_new_reply_and_keeps_the_old(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(status=400), Scripted(text="Second try worked."))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Question")
    failed = await collect_reply(communicator)
    await communicator.send_json_to({"type": "regenerate", "message_id": failed["reply_id"]})
    regenerated = await collect_reply(communicator)
    await communicator.disconnect()

    replies = [m async for m in conversation.messages.filter(role="assistant").order_by("id")]
    assert [r.status for r in replies] == ["failed", "complete"]
    assert replies[1].content == "Second try worked."
    assert regenerated["reply_id"] == replies[1].pk
    assert plain(fake_api.requests[-1]["body"]["messages"]) == [
        {"role": "user", "content": "Question"}
    ]


async def test_continue_extends_the_same_reply(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text="Part one and " + "more " * 40, error_after_tokens=4))
    fake_api.script(Scripted(text=" and the rest."))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Story please")
    cut = await collect_reply(communicator)
    partial = (await Message.objects.aget(pk=cut["reply_id"])).content
    await communicator.send_json_to({"type": "continue", "message_id": cut["reply_id"]})
    final = ""
    while not (final.startswith("<article") and 'data-status="complete"' in final):
        final = await communicator.receive_from(timeout=5)
    await communicator.disconnect()

    reply = await Message.objects.aget(pk=cut["reply_id"])
    assert reply.status == "complete"
    assert reply.content == partial + " and the rest."
    sent = plain(fake_api.requests[-1]["body"]["messages"])
    assert sent[-1] == {"role": "assistant", "content": partial.rstrip()}


async def test_only_the_latest_reply_can_be_regenerated(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    old = await sync_to_async(MessageFactory)(
        conversation=conversation, role="assistant", status="failed", content=""
    )
    await sync_to_async(MessageFactory)(conversation=conversation, content="newer")
    communicator, _, _ = await open_socket(user, conversation.pk)
    await communicator.send_json_to({"type": "regenerate", "message_id": old.pk})
    frame = await communicator.receive_from(timeout=5)
    await communicator.disconnect()
    assert "Only the latest reply" in frame
    assert fake_api.requests == []


async def test_breaker_opens_fails_fast_then_half_opens(user, fake_api, settings):
    settings.CLAUDE_MAX_RETRIES = 0
    settings.CLAUDE_BREAKER_THRESHOLD = 2
    settings.CLAUDE_BREAKER_COOLDOWN = 300
    fake_api.script(Scripted(status=500), Scripted(status=500))
    await chat_once_on_new(user)
    await chat_once_on_new(user)
    assert await breaker.state() == breaker.OPEN

    result, reply = await chat_once_on_new(user)  # fails fast: no upstream call
    assert len(fake_api.requests) == 2
    assert reply.error_kind == "unavailable"
    assert "Claude is unavailable" in result["final"]

    await cache.aset(breaker.UNTIL_KEY, time.time() - 1)  # the cool-down is over
    fake_api.script(Scripted(text="Back again."))
    _, reply = await chat_once_on_new(user)  # the probe goes through and closes it
    assert reply.content == "Back again."
    assert await breaker.state() == breaker.CLOSED


async def chat_once_on_new(user):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Hi")
    result = await collect_reply(communicator)
    await communicator.disconnect()
    reply = await Message.objects.aget(pk=result["reply_id"])
    return result, reply


async def test_fallback_model_takes_over_on_sustained_overload(user, fake_api, settings):
    settings.CLAUDE_MAX_RETRIES = 1
    settings.CLAUDE_FALLBACK_MODEL = "claude-haiku-4-5"
    fake_api.script(Scripted(status=529), Scripted(status=529), Scripted(text="From Haiku."))
    result, reply = await chat_once_on_new(user)
    assert reply.status == "complete"
    assert reply.content == "From Haiku."
    assert reply.model == "claude-haiku-4-5"
    assert fake_api.requests[-1]["body"]["model"] == "claude-haiku-4-5"
    assert "claude-haiku-4-5" in result["final"]  # the reply says which model wrote it


async def test_rate_limit_refuses_before_saving_and_says_when(user, fake_api, settings):
    settings.RATE_LIMIT_USER_REQUESTS = "2/hour"  # exact unless a new window begins mid-test
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    for text in ("one", "two"):
        await send_text(communicator, text)
        await collect_reply(communicator)
    await send_text(communicator, "three")
    frame = await communicator.receive_from(timeout=5)
    await communicator.disconnect()

    assert "sending too many requests" in frame
    assert "try again in" in frame
    assert 'id="composer-text"' not in frame  # the composer keeps the text
    assert await conversation.messages.acount() == 4
    assert len(fake_api.requests) == 2


async def test_global_token_limit_applies_to_everyone(user, other_user, fake_api, settings):
    settings.RATE_LIMIT_GLOBAL_TOKENS = f"{settings.CLAUDE_MAX_TOKENS + 50}/minute"
    await chat_once_on_new(user)
    conversation = await sync_to_async(ConversationFactory)(user=other_user)
    communicator, _, _ = await open_socket(other_user, conversation.pk)
    await send_text(communicator, "me too")
    frame = await communicator.receive_from(timeout=5)
    await communicator.disconnect()
    assert "Everyone together is sending too many tokens" in frame


def test_orphaned_streaming_replies_are_marked_interrupted():
    conversation = ConversationFactory()
    orphan = MessageFactory(
        conversation=conversation, role="assistant", status="streaming", owner="gone:1:abc"
    )
    done = MessageFactory(conversation=conversation, role="assistant", status="complete")
    assert sweep_orphaned_replies() == 1
    orphan.refresh_from_db()
    done.refresh_from_db()
    assert orphan.status == "interrupted"
    assert done.status == "complete"


async def test_a_stopped_reply_is_billed_for_the_text_it_produced(user, fake_api):
    from billing.models import LedgerEntry, Reservation

    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(SLOW)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Go on")
    for _ in range(3):
        await first_delta(communicator)
    await communicator.send_json_to({"type": "stop"})
    final = ""
    while 'data-status="stopped"' not in final:
        final = await communicator.receive_from(timeout=5)
    await communicator.disconnect()

    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    entry = await LedgerEntry.objects.aget(message_id=reply.pk)
    assert not reply.tokens_exact and reply.tokens is None  # no API count: estimate later
    assert entry.output_tokens > 1  # not the 1 token message_start reports
    assert entry.output_tokens >= len(reply.content) // 4
    assert await Reservation.objects.acount() == 0


async def test_deleting_a_conversation_mid_reply_stops_it_and_keeps_the_ledger(
    user, fake_api, client
):
    from billing.models import LedgerEntry, Reservation

    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(SLOW)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Go on")
    await first_delta(communicator)
    await sync_to_async(client.force_login)(user)
    await sync_to_async(client.post)(f"/c/{conversation.pk}/delete/")
    await generations.wait_all()
    await communicator.disconnect()

    entry = await LedgerEntry.objects.aget(user=user)
    assert entry.status == "stopped"
    assert entry.conversation_id is None  # the conversation is gone; the cost is not
    assert await Reservation.objects.acount() == 0
    await until(lambda: fake_api.in_flight == 0, within=2)


async def test_a_conversation_deleted_elsewhere_mid_reply_leaves_no_dangling_ledger_row(
    user, fake_api
):
    """Not through the view (no stop): the admin's or an account's deletion. The reply
    settles after its conversation is gone; its ledger row refers to no conversation."""
    from billing.models import LedgerEntry, Reservation
    from conversations.models import Conversation

    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(SLOW)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Go on")
    await first_delta(communicator)
    await sync_to_async(Conversation.objects.filter(pk=conversation.pk).delete)()
    await generations.wait_all()
    await communicator.disconnect()

    entry = await LedgerEntry.objects.aget(user=user)
    assert entry.conversation_id is None
    assert entry.message_id is None
    assert await Reservation.objects.acount() == 0


async def test_a_second_message_waits_for_the_streaming_reply(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(SLOW)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "First")
    await first_delta(communicator)
    await send_text(communicator, "Second")
    frame = ""
    while "chat-error" not in frame:
        frame = await communicator.receive_from(timeout=5)
    await communicator.send_json_to({"type": "stop"})
    await generations.wait_all()
    await communicator.disconnect()
    assert "Wait for the reply to finish" in frame
    assert await conversation.messages.filter(role="user").acount() == 1


async def test_empty_rate_limit_settings_mean_no_limit(user, fake_api, settings):
    for name in ("USER_REQUESTS", "USER_TOKENS", "GLOBAL_REQUESTS", "GLOBAL_TOKENS"):
        setattr(settings, f"RATE_LIMIT_{name}", "")
    _, reply = await chat_once_on_new(user)
    assert reply.status == "complete"


async def test_a_reconnecting_page_gets_replies_that_finished_meanwhile(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    done = await sync_to_async(MessageFactory)(
        conversation=conversation, role="assistant", status="complete", content="**Done**"
    )
    communicator, _, _ = await open_socket(user, conversation.pk)
    await communicator.send_json_to({"type": "sync", "ids": [done.pk, "junk"]})
    frame = await communicator.receive_from(timeout=5)
    await communicator.disconnect()
    assert frame.startswith(f'<article id="message-{done.pk}"')
    assert "<strong>Done</strong>" in frame


async def test_one_read_of_the_cache_before_the_request(user, fake_api, monkeypatch):
    """The stop flag and the breaker's state are read together: with Redis each read is a
    hop to a thread and a round trip before the request may leave."""
    from chatsite import cacheio

    calls: list[tuple] = []
    call = cacheio.call

    async def recorded(method, *args, **kwargs):
        calls.append((method, args, len(fake_api.requests)))
        return await call(method, *args, **kwargs)

    monkeypatch.setattr(cacheio, "call", recorded)
    _, reply = await chat_once_on_new(user)
    assert reply.status == "complete"
    before = [(method, args) for method, args, sent in calls if sent == 0]
    assert before == [("get_many", ([f"chatsite:reply:{reply.pk}:stop", *breaker.STATE_KEYS],))], (
        before
    )
