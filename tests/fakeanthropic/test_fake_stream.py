"""Streaming and non-streaming /v1/messages through the real SDK, both transports."""

from __future__ import annotations

import asyncio
import itertools
import time

import anthropic
from anthropic._streaming import SSEDecoder

from fakeanthropic import FakeAnthropic, Scripted, demo_reply, fake_client_kwargs
from fakeanthropic.tokens import input_tokens, split_tokens

from .conftest import KEY, MODEL, assistant, user

PROMPT = "Please explain how **SSE** streaming works, in a few words."


def body(prompt: str = PROMPT, **extra):
    return {"model": MODEL, "max_tokens": 1024, "messages": [user(prompt)], **extra}


async def test_raw_sse_event_sequence_and_shapes(raw):
    events = []
    async with raw.stream(
        "POST", "/v1/messages", json=body(stream=True), headers={"x-api-key": KEY}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["request-id"].startswith("req_")
        assert "anthropic-ratelimit-requests-limit" in r.headers
        async for sse in SSEDecoder().aiter_bytes(r.aiter_bytes()):
            events.append((sse.event, sse.json()))
    names = [name for name, _ in events]
    n_deltas = names.count("content_block_delta")
    assert n_deltas > 5
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * n_deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for name, data in events:
        assert data["type"] == name
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_")
    assert start["type"] == "message" and start["role"] == "assistant"
    assert start["content"] == [] and start["model"] == MODEL
    assert start["stop_reason"] is None and start["stop_sequence"] is None
    assert start["usage"] == {
        "input_tokens": input_tokens(body()),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    deltas = [d for n, d in events if n == "content_block_delta"]
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas)
    text = "".join(d["delta"]["text"] for d in deltas)
    assert text == demo_reply(PROMPT)
    assert events[-3][1] == {"type": "content_block_stop", "index": 0}
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": len(split_tokens(text))},
    }


async def test_sdk_raw_events_and_cumulative_usage(client):
    stream = await client.messages.create(**body(), stream=True)
    types = [event.type async for event in stream]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) == {"content_block_delta"}


async def test_text_stream_equals_final_message(client):
    async with client.messages.stream(**body()) as s:
        pieces = [t async for t in s.text_stream]
        final = await s.get_final_message()
        request_id = s.request_id
    assert request_id and request_id.startswith("req_")
    assert "".join(pieces) == final.content[0].text == demo_reply(PROMPT)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(split_tokens(final.content[0].text))
    assert final.usage.input_tokens == input_tokens(body())
    assert final.usage.service_tier == "standard"


async def test_deltas_arrive_spread_in_time_in_process():
    app = FakeAnthropic(ttft=0.15, tokens_per_second=150.0, tokens_per_delta=3)
    async with anthropic.AsyncAnthropic(api_key="demo", **fake_client_kwargs(app)) as c:
        t0 = time.monotonic()
        stamps = []
        async with c.messages.stream(**body("[[fake:tokens=60]] go")) as s:
            async for _ in s.text_stream:
                stamps.append(time.monotonic() - t0)
    # 20 deltas, 20 ms apart, the first after ~150 ms: not all at the end.
    assert len(stamps) == 20
    assert 0.12 <= stamps[0] < 0.3
    span = stamps[-1] - stamps[0]
    assert 0.3 <= span < 0.8
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert sum(g > 0.008 for g in gaps) >= 15


async def test_pacing_uses_absolute_deadlines(client, app):
    app.configure(ttft=0.05, tokens_per_second=300.0, tokens_per_delta=3)  # 10 ms a delta
    t0 = time.monotonic()
    async with client.messages.stream(**body("[[fake:tokens=150]] x")) as s:
        await s.get_final_message()
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 0.9  # 0.05 + 49 * 0.01 = 0.54 s, no drift


async def test_non_streaming_create(client):
    msg = await client.messages.create(**body())
    assert msg.content[0].text == demo_reply(PROMPT)
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == input_tokens(body())
    assert msg.usage.output_tokens == len(split_tokens(msg.content[0].text))
    assert msg.id.startswith("msg_") and msg.model == MODEL


async def test_max_tokens_truncates(client):
    async with client.messages.stream(**{**body(), "max_tokens": 7}) as s:
        text = "".join([t async for t in s.text_stream])
        final = await s.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 7
    assert text == "".join(split_tokens(demo_reply(PROMPT))[:7])
    msg = await client.messages.create(**{**body(), "max_tokens": 7})
    assert msg.stop_reason == "max_tokens" and msg.content[0].text == text


async def test_count_tokens_matches_streamed_total_input(client):
    req = {
        "model": MODEL,
        "system": [{"type": "text", "text": "You are terse. " * 20}],
        "tools": [{"name": "get_time", "description": "Now", "input_schema": {"type": "object"}}],
        "messages": [user("hello"), assistant("Hi! How can I help?"), user(PROMPT)],
    }
    counted = await client.messages.count_tokens(**req)
    async with client.messages.stream(**req, max_tokens=50) as s:
        final = await s.get_final_message()
    u = final.usage
    total = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens
    assert counted.input_tokens == total == input_tokens({**req, "max_tokens": 50})


async def test_directive_lengths(client):
    msg = await client.messages.create(**body("[[fake:tokens=37]] please"))
    assert msg.usage.output_tokens == 37
    assert len(split_tokens(msg.content[0].text)) == 37
    async with client.messages.stream(**{**body("[[fake:long]]"), "max_tokens": 4000}) as s:
        final = await s.get_final_message()
    assert 1900 <= final.usage.output_tokens <= 2200
    assert "```python" in final.content[0].text


async def test_scripted_text_and_overrides(client, app):
    app.script("Exactly this.", Scripted(text="Hi", output_tokens=99, stop_reason="refusal"))
    first = await client.messages.create(**body())
    second = await client.messages.create(**body())
    third = await client.messages.create(**body())
    assert first.content[0].text == "Exactly this."
    assert second.content[0].text == "Hi"
    assert second.usage.output_tokens == 99 and second.stop_reason == "refusal"
    assert third.content[0].text == demo_reply(PROMPT)  # script exhausted -> demo
    assert len(app.requests) == 3
    assert app.requests[0]["body"]["messages"][0]["content"] == PROMPT


async def test_demo_reply_is_deterministic(client):
    a = await client.messages.create(**body("same input"))
    b = await client.messages.create(**body("same input"))
    c = await client.messages.create(**body("other input"))
    assert a.content[0].text == b.content[0].text != c.content[0].text
    assert a.usage == b.usage


async def test_client_disconnect_stops_stream(make_client, app):
    app.configure(ttft=0.01, tokens_per_second=100.0)  # a ~2000-token reply: ~60 s
    c = make_client()
    async with c.messages.stream(**{**body("[[fake:long]]"), "max_tokens": 4000}) as s:
        async for _ in s.text_stream:
            assert app.in_flight == 1
            break
    for _ in range(100):
        if app.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert app.in_flight == 0
