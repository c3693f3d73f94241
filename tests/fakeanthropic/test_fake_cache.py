"""Prompt-cache simulation, through the real SDK in-process (and once over loopback)."""

from __future__ import annotations

import anthropic
import pytest

from fakeanthropic import FakeAnthropic, fake_client_kwargs, min_cacheable_tokens
from fakeanthropic.tokens import count_tokens, input_tokens

from .conftest import MODEL, assistant

LONG = "The quick brown fox jumps over the lazy dog. " * 150  # 1500 tokens
EPH = {"type": "ephemeral"}
EPH_1H = {"type": "ephemeral", "ttl": "1h"}


def text_msg(role: str, text: str, cc: dict | None = None) -> dict:
    block = {"type": "text", "text": text}
    if cc:
        block["cache_control"] = cc
    return {"role": role, "content": [block]}


def system(text: str = LONG, cc: dict | None = None) -> list[dict]:
    block = {"type": "text", "text": text}
    if cc:
        block["cache_control"] = cc
    return [block]


@pytest.fixture
async def c(app):
    async with anthropic.AsyncAnthropic(
        api_key="k1", max_retries=0, **fake_client_kwargs(app)
    ) as client:
        yield client


async def usage(client, messages, *, sys=None, model=MODEL, **kw):
    extra = {"system": sys} if sys is not None else {}
    msg = await client.messages.create(model=model, max_tokens=50, messages=messages, **extra, **kw)
    return msg.usage


def total(u) -> int:
    return u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens


async def test_growing_conversation_writes_then_reads(c):
    turn1 = [text_msg("user", "first question", EPH)]
    u1 = await usage(c, turn1, sys=system())
    assert u1.cache_read_input_tokens == 0
    assert u1.cache_creation_input_tokens == total(u1) > 1500
    assert u1.cache_creation.ephemeral_5m_input_tokens == u1.cache_creation_input_tokens
    assert u1.input_tokens == 0  # nothing after the last breakpoint

    # Next turn: the breakpoint moves to the newest message.
    turn2 = [
        text_msg("user", "first question"),
        assistant("An answer."),
        text_msg("user", "second question", EPH),
        # something after the breakpoint stays uncached
    ]
    u2 = await usage(c, turn2, sys=system())
    assert u2.cache_read_input_tokens == total(u1)
    assert u2.cache_creation_input_tokens == total(u2) - total(u1)
    assert u2.input_tokens == 0

    turn3 = [*turn2[:2], text_msg("user", "second question"), assistant("Two."),
             text_msg("user", "third", EPH), text_msg("user", "trailing text")]  # fmt: skip
    u3 = await usage(c, turn3, sys=system())
    assert u3.cache_read_input_tokens == total(u2)
    assert u3.input_tokens == count_tokens("trailing text") + 3
    assert total(u3) == input_tokens({"system": system(), "messages": turn3})


async def test_string_content_and_text_block_share_a_prefix(c):
    await usage(c, [text_msg("user", "hello", EPH)], sys=system())
    u = await usage(c, [{"role": "user", "content": "hello"}, assistant("hi"),
                        text_msg("user", "more", EPH)], sys=system())  # fmt: skip
    assert u.cache_read_input_tokens > 1500


async def test_below_minimum_is_not_cached(c):
    short = [text_msg("user", "tiny prompt", EPH)]
    for _ in range(2):
        u = await usage(c, short, sys=system("Short system prompt.", EPH))
        assert u.cache_creation_input_tokens == u.cache_read_input_tokens == 0
        assert u.input_tokens == total(u)


async def test_model_minimums(c):
    assert min_cacheable_tokens("claude-sonnet-4-6") == 1024
    assert min_cacheable_tokens("claude-sonnet-4-5-20250929") == 1024
    assert min_cacheable_tokens("claude-haiku-4-5") == 4096
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-3-5-haiku-20241022") == 1024  # unparsed: default
    assert min_cacheable_tokens("claude-opus-4-8") == 4096
    assert min_cacheable_tokens("claude-opus-4-5-20251101") == 4096
    assert min_cacheable_tokens("claude-opus-4-1-20250805") == 1024
    assert min_cacheable_tokens("claude-opus-4-20250514") == 1024
    msgs = [text_msg("user", "q", EPH)]
    u = await usage(c, msgs, sys=system(), model="claude-haiku-4-5")
    assert u.cache_creation_input_tokens == 0  # 1500 < 4096
    u = await usage(c, msgs, sys=system(LONG * 3), model="claude-haiku-4-5")
    assert u.cache_creation_input_tokens == total(u)


async def test_five_minute_expiry_and_refresh_on_hit(c, clock):
    msgs = [text_msg("user", "q", EPH)]
    written = await usage(c, msgs, sys=system())
    assert written.cache_creation_input_tokens > 0
    clock.advance(299)
    assert (await usage(c, msgs, sys=system())).cache_read_input_tokens == total(written)
    clock.advance(299)  # 598 s after the write, 299 s after the refreshing hit
    assert (await usage(c, msgs, sys=system())).cache_read_input_tokens == total(written)
    clock.advance(301)
    u = await usage(c, msgs, sys=system())
    assert u.cache_read_input_tokens == 0
    assert u.cache_creation_input_tokens == total(written)


async def test_one_hour_ttl_and_mixed_split(c, clock):
    msgs = [text_msg("user", "question one", EPH)]
    u = await usage(c, msgs, sys=system(cc=EPH_1H))
    system_prefix = input_tokens({"system": system(), "messages": []})  # 5 + system
    assert u.cache_creation.ephemeral_1h_input_tokens == system_prefix > 1500
    assert u.cache_creation.ephemeral_5m_input_tokens == total(u) - system_prefix
    clock.advance(1800)  # the 5m entry is gone, the 1h one is not
    u2 = await usage(c, msgs, sys=system(cc=EPH_1H))
    assert u2.cache_read_input_tokens == u.cache_creation.ephemeral_1h_input_tokens
    assert u2.cache_creation.ephemeral_5m_input_tokens == u.cache_creation.ephemeral_5m_input_tokens
    clock.advance(3601)
    u3 = await usage(c, msgs, sys=system(cc=EPH_1H))
    assert u3.cache_read_input_tokens == 0


def many_turns(n: int, bps: set[int]) -> list[dict]:
    """n single-block messages (blocks 1..n after the system block 0)."""
    out = []
    for i in range(1, n + 1):
        role = "user" if i % 2 else "assistant"
        out.append(text_msg(role, f"message number {i}", EPH if i in bps else None))
    return out


async def test_lookback_is_twenty_blocks(c):
    await usage(c, many_turns(31, {5}), sys=system())  # entry at block 5
    miss = await usage(c, many_turns(31, {26}), sys=system())  # 21 blocks later
    assert miss.cache_read_input_tokens == 0
    hit = await usage(c, many_turns(31, {25}), sys=system())  # 20 blocks later
    prefix5 = input_tokens({"system": system(), "messages": many_turns(5, set())})
    assert hit.cache_read_input_tokens == prefix5
    # A second, earlier breakpoint extends the reach.
    u = await usage(c, many_turns(31, {17, 29}), sys=system())
    assert u.cache_read_input_tokens == input_tokens(
        {"system": system(), "messages": many_turns(26, set())}
    )  # the longest hit: the entry written at block 26 above


async def test_more_than_four_breakpoints_is_400(c):
    with pytest.raises(anthropic.BadRequestError) as info:
        await usage(c, many_turns(5, {1, 2, 3, 4, 5}), sys=system())
    assert "maximum of 4" in info.value.body["error"]["message"]
    ok = await usage(c, many_turns(5, {2, 3, 4, 5}), sys=system())
    assert ok.cache_creation_input_tokens > 0


async def test_entries_are_per_api_key_and_model(c, app):
    msgs = [text_msg("user", "q", EPH)]
    await usage(c, msgs, sys=system())
    async with anthropic.AsyncAnthropic(api_key="k2", **fake_client_kwargs(app)) as other:
        assert (await usage(other, msgs, sys=system())).cache_read_input_tokens == 0
    other_model = "claude-sonnet-4-6-20260101"
    assert (await usage(c, msgs, sys=system(), model=other_model)).cache_read_input_tokens == 0
    assert (await usage(c, msgs, sys=system())).cache_read_input_tokens > 0


async def test_tools_are_part_of_the_prefix(c):
    tools = [{"name": "lookup", "description": LONG, "input_schema": {"type": "object"},
              "cache_control": EPH}]  # fmt: skip
    u1 = await usage(c, [text_msg("user", "a")], tools=tools)
    assert u1.cache_creation_input_tokens > 1500 and u1.input_tokens > 0
    u2 = await usage(c, [text_msg("user", "b")], tools=tools)
    assert u2.cache_read_input_tokens == u1.cache_creation_input_tokens


async def test_count_tokens_equals_cached_total(c):
    msgs = [text_msg("user", "q", EPH)]
    await usage(c, msgs, sys=system())
    u = await usage(c, msgs, sys=system())
    counted = await c.messages.count_tokens(model=MODEL, system=system(), messages=msgs)
    assert u.cache_read_input_tokens > 0
    assert counted.input_tokens == total(u)


async def test_entry_readable_once_the_response_started(clock):
    app = FakeAnthropic(ttft=0.0, tokens_per_second=50.0, clock=clock)  # a slow stream
    async with anthropic.AsyncAnthropic(api_key="k", **fake_client_kwargs(app)) as client:
        msgs = [text_msg("user", "q", EPH)]
        async with client.messages.stream(
            model=MODEL, max_tokens=100, system=system(), messages=msgs
        ) as s:
            async for _ in s.text_stream:
                break  # the first stream is still going
            app.configure(tokens_per_second=100000.0)
            u = await usage(client, msgs, sys=system())
            assert u.cache_read_input_tokens > 1500


async def test_cache_over_loopback(app, loopback):
    delegate, base_url = loopback
    delegate.target = app
    client = anthropic.AsyncAnthropic(api_key="k", base_url=base_url, max_retries=0)
    msgs = [text_msg("user", "q", EPH)]
    async with client.messages.stream(model=MODEL, max_tokens=20, system=system(),
                                      messages=msgs) as s:  # fmt: skip
        first = (await s.get_final_message()).usage
    async with client.messages.stream(model=MODEL, max_tokens=20, system=system(),
                                      messages=msgs) as s:  # fmt: skip
        second = (await s.get_final_message()).usage
    await client.close()
    assert first.cache_creation_input_tokens == second.cache_read_input_tokens > 1500
