"""Auth, validation and scripted faults, seen through the real SDK on both transports."""

from __future__ import annotations

import asyncio
import time

import anthropic
import httpx2
import pytest

from fakeanthropic import FakeAnthropic, Scripted

from .conftest import KEY, MODEL, user

BODY = {"model": MODEL, "max_tokens": 200, "messages": [user("hello there")]}


async def test_missing_key_is_401(client, app):
    with pytest.raises(anthropic.AuthenticationError) as info:
        await client.messages.create(**BODY, extra_headers={"Authorization": anthropic.omit})
    err = info.value
    assert err.status_code == 401
    assert err.type == "authentication_error"
    assert err.body["type"] == "error"
    assert err.body["request_id"].startswith("req_")
    assert err.response.headers["request-id"] == err.body["request_id"]
    assert app.requests[-1]["api_key"] is None


async def test_wrong_key_is_401(make_client, app):
    app.api_key = "the-right-key"
    with pytest.raises(anthropic.AuthenticationError):
        await make_client(api_key="a-wrong-key").messages.create(**BODY)
    ok = await make_client(api_key="the-right-key").messages.create(**BODY)
    assert ok.content[0].text


async def test_x_api_key_header_accepted(raw):
    r = await raw.post("/v1/messages", json=BODY, headers={"x-api-key": "k"})
    assert r.status_code == 200
    assert r.json()["type"] == "message"


async def test_unknown_route_is_404(client):
    with pytest.raises(anthropic.NotFoundError) as info:
        await client.get("/v1/nope", cast_to=object)
    assert info.value.type == "not_found_error"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"max_tokens": 10, "messages": [user("x")]}, "model"),
        ({"model": MODEL, "messages": [user("x")]}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 10}, "messages"),
        ({"model": MODEL, "max_tokens": 10, "messages": []}, "messages"),
        ({"model": MODEL, "max_tokens": 10, "messages": [{"role": "bot", "content": "x"}]}, "role"),
    ],
)
async def test_invalid_requests_are_400(client, payload, fragment):
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.post("/v1/messages", body=payload, cast_to=object)
    assert info.value.type == "invalid_request_error"
    assert fragment in info.value.body["error"]["message"]


async def test_invalid_json_is_400(raw):
    r = await raw.post(
        "/v1/messages",
        content=b"{not json",
        headers={"x-api-key": KEY, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_429_retry_after_is_honoured(make_client, app):
    app.script(
        Scripted(status=429, retry_after=0.15),
        Scripted(status=429, retry_after=0.15),
        Scripted(text="finally"),
    )
    t0 = time.monotonic()
    msg = await make_client(max_retries=2).messages.create(**BODY)
    elapsed = time.monotonic() - t0
    assert msg.content[0].text == "finally"
    assert len(app.requests) == 3
    assert [r["headers"]["x-stainless-retry-count"] for r in app.requests] == ["0", "1", "2"]
    assert 0.3 <= elapsed < 1.5  # two waits of 0.15 s, not the SDK's default back-off


async def test_429_headers(raw, app):
    app.script(Scripted(status=429, retry_after=7))
    r = await raw.post("/v1/messages", json=BODY, headers={"x-api-key": KEY})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.headers["anthropic-ratelimit-tokens-remaining"]
    assert r.json()["error"]["type"] == "rate_limit_error"


async def test_529_without_retries(make_client, app):
    app.script(Scripted(status=529))
    with pytest.raises(anthropic.OverloadedError) as info:
        await make_client(max_retries=0).messages.create(**BODY)
    assert info.value.status_code == 529 and info.value.type == "overloaded_error"
    assert len(app.requests) == 1


async def test_529_after_retries(make_client, app):
    app.script(*[Scripted(status=529, retry_after=0.01)] * 3)
    with pytest.raises(anthropic.OverloadedError):
        await make_client(max_retries=2).messages.create(**BODY, stream=True)
    assert len(app.requests) == 3


async def test_x_should_retry_false_stops_retries(make_client, app):
    app.script(Scripted(status=500, should_retry=False))
    with pytest.raises(anthropic.InternalServerError) as info:
        await make_client(max_retries=2).messages.create(**BODY)
    assert info.value.type == "api_error"
    assert len(app.requests) == 1


@pytest.mark.parametrize(
    ("directive", "exc"),
    [
        ("[[fake:overloaded]]", anthropic.OverloadedError),
        ("[[fake:500]]", anthropic.InternalServerError),
        ("[[fake:429]]", anthropic.RateLimitError),
    ],
)
async def test_error_directives(client, directive, exc):
    with pytest.raises(exc):
        await client.messages.create(**{**BODY, "messages": [user(f"hi {directive}")]})


@pytest.mark.parametrize("how", ["script", "directive"])
async def test_midstream_error_event(client, app, how):
    if how == "script":
        app.script(Scripted(error_after_tokens=9))
        messages = [user("tell me a story")]
    else:
        messages = [user("tell me a story [[fake:midstream_overload]]")]
    received = []
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=500, messages=messages) as s:
            async for text in s.text_stream:
                received.append(text)
    assert "".join(received)  # partial text arrived first
    assert info.value.status_code == 200
    assert info.value.type == "overloaded_error"
    assert not isinstance(info.value, anthropic.OverloadedError)
    assert len(app.requests) == 1  # the SDK does not retry a mid-stream error


async def test_stall_trips_client_timeout(make_client, app):
    app.script(Scripted(stall=True))
    c = make_client(timeout=0.3, max_retries=0)
    t0 = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        async with c.messages.stream(**BODY) as s:
            await s.get_final_message()
    assert time.monotonic() - t0 < 2
    for _ in range(100):  # the server notices the client left and stops the stall
        if app.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert app.in_flight == 0


async def test_stall_for_a_while_then_answers(client, app):
    app.script(Scripted(stall=0.2, text="late"))
    t0 = time.monotonic()
    msg = await client.messages.create(**BODY)
    assert msg.content[0].text == "late"
    assert time.monotonic() - t0 >= 0.2


async def test_drop_mid_stream_is_a_connection_error(client, app):
    app.script(Scripted(drop_after_tokens=9))
    received = []
    # Mid-stream, the SDK (since 2.17) wraps httpx2's error in its connection error, as it
    # does for a real server's dropped connection.
    with pytest.raises(anthropic.APIConnectionError) as raised:
        async with client.messages.stream(**BODY) as s:
            async for text in s.text_stream:
                received.append(text)
    assert isinstance(raised.value.__cause__, httpx2.RemoteProtocolError)
    assert "".join(received)


async def test_drop_non_streaming_is_a_connection_error(client, app):
    app.script(Scripted(drop_after_tokens=1))
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(**BODY)


async def test_control_endpoints_over_http(raw, app):
    r = await raw.post("/_fake/script", json=[{"text": "one"}, "two", {"status": 529}])
    assert r.status_code == 200 and r.json() == {"queued": 3}
    r = await raw.post("/_fake/config", json={"ttft": 0.0, "tokens_per_second": 5000})
    assert r.json()["ttft"] == 0.0 and app.tokens_per_second == 5000
    texts = []
    for _ in range(2):
        r = await raw.post("/v1/messages", json=BODY, headers={"x-api-key": KEY})
        texts.append(r.json()["content"][0]["text"])
    assert texts == ["one", "two"]
    r = await raw.post("/v1/messages", json=BODY, headers={"x-api-key": KEY})
    assert r.status_code == 529
    recorded = (await raw.get("/_fake/requests")).json()
    assert len(recorded) == 3 and recorded[-1]["body"] == BODY
    assert "authorization" not in recorded[-1]["headers"]
    assert (await raw.post("/_fake/reset")).json() == {"ok": True}
    assert (await raw.get("/_fake/requests")).json() == []
    bad = await raw.post("/_fake/script", json=[{"nonsense": 1}])
    assert bad.status_code == 400


async def test_lifespan_messages():
    app = FakeAnthropic()
    sent = []
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive():
        return inbox.pop(0)

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
