"""Budgets and the ledger, through the chat socket."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from billing.models import LedgerEntry
from conversations.generations import generations
from conversations.models import Conversation, Message
from fakeanthropic import Scripted
from tests.factories import ConversationFactory
from tests.sockets import collect_reply, open_socket, send_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


async def test_each_reply_is_on_the_ledger_at_its_exact_cost(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(Scripted(text="Priced reply.", output_tokens=1000))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Hello")
    result = await collect_reply(communicator)
    await communicator.disconnect()

    reply = await Message.objects.aget(pk=result["reply_id"])
    entry = await LedgerEntry.objects.aget(message_id=reply.pk)
    assert entry.purpose == "chat"
    assert entry.user_id == user.pk
    assert entry.conversation_id == conversation.pk
    assert entry.output_tokens == 1000
    assert entry.input_tokens == reply.input_tokens
    expected = Decimal(reply.input_tokens) * 3 / 10**6 + Decimal(1000) * 15 / 10**6
    assert entry.cost == expected.quantize(Decimal("0.000001"))
    assert entry.request_id == reply.request_id
    assert entry.status == "complete"
    assert entry.ttft_ms is not None and entry.duration_ms >= entry.ttft_ms


async def test_failed_call_is_recorded_with_its_status(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(Scripted(status=400))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Hello")
    await collect_reply(communicator)
    await communicator.disconnect()
    entry = await LedgerEntry.objects.aget(conversation_id=conversation.pk)
    assert entry.status == "failed"
    assert entry.error_kind == "bad_request"
    assert entry.cost == 0


async def test_budget_used_up_blocks_before_any_call_and_says_when_it_resets(
    user, fake_api, settings
):
    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.01")  # less than one worst case
    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Expensive question")
    frame = await communicator.receive_from(timeout=5)
    await communicator.disconnect()
    assert "budget" in frame and "resets" in frame.lower()
    assert fake_api.requests == []
    assert await conversation.messages.acount() == 0  # refused, not half-saved


async def test_warning_at_eighty_percent(user, fake_api, settings):
    settings.CLAUDE_MAX_TOKENS = 1000
    # One worst case is ~1,000 output tokens at $15/M = $0.015 plus a little input.
    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.018")
    conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
    fake_api.script(Scripted(text="ok"))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Hi")
    result = await collect_reply(communicator)
    await communicator.disconnect()
    warning = [f for f in result["frames"] if 'class="chat-error warning"' in f]
    assert warning and "of your" in warning[0]


async def test_auto_title_call_is_on_the_ledger_as_title(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(
        user=user, title=Conversation.DEFAULT_TITLE
    )
    fake_api.script(Scripted(text="Answer."))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Plan a trip to Lisbon")
    await collect_reply(communicator)
    await communicator.receive_from(timeout=5)  # the title arrives
    await communicator.disconnect()
    purposes = sorted(
        [e async for e in LedgerEntry.objects.filter(conversation_id=conversation.pk)],
        key=lambda e: e.purpose,
    )
    assert [e.purpose for e in purposes] == ["chat", "title"]
    assert purposes[1].model == "claude-haiku-4-5"
    assert purposes[1].cost > 0


@pytest.mark.parametrize(("named", "saved"), [(Conversation.DEFAULT_TITLE, True), ("Mine", False)])
def test_the_title_is_saved_with_its_call_unless_the_user_named_it_meanwhile(user, named, saved):
    from billing import budgets
    from conversations.turns import _settle_title

    conversation = ConversationFactory(user=user, title=named)
    hold = budgets.reserve(
        user=user, model="claude-haiku-4-5", prompt_tokens=100, max_tokens=60, purpose="title"
    )

    entry, titled = _settle_title(
        hold,
        title="Trip to Lisbon",
        conversation=conversation.pk,
        usage={"input_tokens": 90, "output_tokens": 8},
        model="claude-haiku-4-5",
        status="complete",
        request_id="req_title",
    )

    assert titled is saved
    conversation.refresh_from_db()
    assert conversation.title == ("Trip to Lisbon" if saved else "Mine")
    entry = LedgerEntry.objects.get(pk=entry.pk)  # on the ledger either way
    assert (entry.purpose, entry.conversation_id, entry.output_tokens) == (
        "title",
        conversation.pk,
        8,
    )
    assert entry.cost > 0
