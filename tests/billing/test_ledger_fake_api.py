"""The ledger adds up exactly to the usage the (fake) API reported, through the real SDK."""

import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import Sum

from billing.budgets import areserve, asettle
from billing.models import LedgerEntry, UserMonth
from billing.pricing import acost_of
from billing.tokens import Tokens, usage_dict
from conversations.claude.client import get_client
from fakeanthropic import Scripted
from tests.billing.conftest import SONNET
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENT = "The quick brown fox jumps over the lazy dog. " * 150  # ~1,500 tokens: cacheable
QUESTIONS = ["What is the fox doing?", "And the dog?", "Summarise it in one line."]


def ask(text: str) -> dict:
    """A user turn with a 5-minute breakpoint, so the next turn reads this prefix."""
    return {
        "role": "user",
        "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
    }


def plain(message: dict) -> dict:
    return {
        "role": message["role"],
        "content": [{"type": "text", "text": c["text"]} for c in message["content"]],
    }


async def test_ledger_sums_to_the_usage_the_api_reported_over_a_multi_turn_chat(fake_api):
    fake_api.script(*(Scripted(text=f"Reply number {i}.", output_tokens=40 + i) for i in range(3)))
    user = await sync_to_async(UserFactory)()
    conversation = await sync_to_async(ConversationFactory)(user=user)
    client = get_client()
    system = [
        {
            "type": "text",
            "text": DOCUMENT,
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    history: list[dict] = []
    reported = []
    for question in QUESTIONS:
        messages = [*(plain(m) if m["role"] == "user" else m for m in history), ask(question)]
        request = {"model": SONNET, "max_tokens": 256, "system": system, "messages": messages}
        estimate = await client.messages.count_tokens(
            model=SONNET, system=system, messages=messages
        )
        reservation = await areserve(
            user=user,
            model=SONNET,
            prompt_tokens=estimate.input_tokens,
            max_tokens=256,
            purpose="chat",
            cache_ttl="1h",
        )
        started = time.monotonic()
        async with client.messages.stream(**request) as stream:
            first = None
            async for _text in stream.text_stream:
                first = first or time.monotonic()
            final = await stream.get_final_message()
        await asettle(
            reservation,
            usage=usage_dict(final.usage),
            model=final.model,
            status="complete",
            request_id=stream.request_id or "",
            ttft_ms=(first - started) * 1000,
            duration_ms=(time.monotonic() - started) * 1000,
            conversation=conversation,
        )
        reported.append(final.usage)
        history += [ask(question), {"role": "assistant", "content": final.content[0].text}]

    # The cache really worked: turn 1 wrote the 1-hour system block, later turns read it.
    assert reported[0].cache_creation.ephemeral_1h_input_tokens > 1_000
    assert all(u.cache_read_input_tokens > 1_000 for u in reported[1:])

    ledger = LedgerEntry.objects.filter(conversation=conversation)
    sums = await ledger.aaggregate(
        input=Sum("input_tokens"),
        write_5m=Sum("cache_write_5m_tokens"),
        write_1h=Sum("cache_write_1h_tokens"),
        read=Sum("cache_read_tokens"),
        output=Sum("output_tokens"),
        cost=Sum("cost"),
    )
    assert sums["input"] == sum(u.input_tokens for u in reported)
    assert sums["write_5m"] == sum(u.cache_creation.ephemeral_5m_input_tokens for u in reported)
    assert sums["write_1h"] == sum(u.cache_creation.ephemeral_1h_input_tokens for u in reported)
    assert sums["write_5m"] + sums["write_1h"] == sum(
        u.cache_creation_input_tokens for u in reported
    )
    assert sums["read"] == sum(u.cache_read_input_tokens for u in reported)
    assert sums["output"] == sum(u.output_tokens for u in reported) == 40 + 41 + 42
    expected_cost = Decimal(0)
    for u in reported:
        t = Tokens.from_usage(usage_dict(u))
        # $ per million: input 3, 5m write 3.75, 1h write 6, read 0.30, output 15.
        expected_cost += (
            Decimal(t.input * 3)
            + Decimal(t.cache_write_5m) * Decimal("3.75")
            + Decimal(t.cache_write_1h * 6)
            + Decimal(t.cache_read) * Decimal("0.3")
            + Decimal(t.output * 15)
        ) / 1_000_000
        assert await acost_of(model=SONNET, usage=usage_dict(u)) is not None
    assert abs(sums["cost"] - expected_cost) <= Decimal("0.0000015")  # three roundings at most
    counter = await UserMonth.objects.aget(user=user)
    assert counter.spent == sums["cost"]
    assert counter.reserved == 0
    assert await ledger.exclude(ttft_ms=None).acount() == 3
    await sync_to_async(connections.close_all)()
