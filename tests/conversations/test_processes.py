"""Real daphne processes: a crash mid-stream, and two processes sharing Redis."""

import asyncio
import html
import json
import os
import signal

import pytest
import redis
import websockets
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.models import Message
from fakeanthropic import Scripted
from tests.factories import ConversationFactory
from tests.servers import start_daphne, stop
from tests.sockets import DELTA_RE, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/7"


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await sync_to_async(connections.close_all)()


def ws_connect(base_url: str, conversation_id: int, cookie: str):
    return websockets.connect(
        base_url.replace("http", "ws") + f"/ws/conversations/{conversation_id}/",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": base_url},
    )


async def until_delta(ws) -> str:
    while True:
        frame = await asyncio.wait_for(ws.recv(), timeout=10)
        if DELTA_RE.search(frame) or "innerHTML:#message-" in frame:
            return frame


async def read_to_end(ws) -> tuple[list[str], str]:
    deltas = []
    while True:
        frame = await asyncio.wait_for(ws.recv(), timeout=15)
        deltas += [html.unescape(t) for _, t in DELTA_RE.findall(frame)]
        if frame.startswith("<article") and 'data-status="streaming"' not in frame:
            return deltas, frame


async def test_daphne_killed_mid_stream_then_restarted_marks_reply_interrupted(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text="long " * 300, tokens_per_second=30))
    cookie = await session_cookie(user)
    process, url = await sync_to_async(start_daphne)(fake_base_url=fake_api.base_url)
    try:
        async with ws_connect(url, conversation.pk, cookie) as ws:
            await ws.send(json.dumps({"text": "Tell me a long story"}))
            await until_delta(ws)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    except websockets.ConnectionClosed:
        pass
    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.status == "streaming"  # the crash left it so

    restarted, _ = await sync_to_async(start_daphne)(fake_base_url=fake_api.base_url)
    try:
        await reply.arefresh_from_db()
        user_message = await Message.objects.aget(conversation=conversation, role="user")
    finally:
        await sync_to_async(stop)(restarted)
    assert reply.status == "interrupted"
    assert user_message.content == "Tell me a long story"


async def test_daphne_stops_without_a_traceback_after_calls_to_claude(user, fake_api, tmp_path):
    """The SDK client's aiohttp session is closed before the server stops, not left to the
    interpreter's exit (where aiohttp's finaliser logged a traceback at every stop)."""
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text="A short answer."))
    cookie = await session_cookie(user)
    log = tmp_path / "daphne.log"
    process, url = await sync_to_async(start_daphne)(
        fake_base_url=fake_api.base_url, log_path=log, CLAUDE_HTTP_CLIENT="aiohttp"
    )
    try:
        async with ws_connect(url, conversation.pk, cookie) as ws:
            await ws.send(json.dumps({"text": "Hello"}))
            _, final = await read_to_end(ws)
    finally:
        await sync_to_async(stop)(process)
    assert 'data-status="complete"' in final
    assert process.returncode == 0
    output = log.read_text()
    assert "Exception ignored" not in output
    assert "Unclosed" not in output


@pytest.fixture
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


async def test_two_processes_on_redis_share_the_stream_catch_up_and_stop(user, fake_api, redis_url):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    text = "shared " * 80
    fake_api.script(Scripted(text=text, tokens_per_second=60))
    cookie = await session_cookie(user)
    first, url_a = await sync_to_async(start_daphne)(
        fake_base_url=fake_api.base_url, REDIS_URL=redis_url
    )
    second, url_b = await sync_to_async(start_daphne)(
        fake_base_url=fake_api.base_url, REDIS_URL=redis_url
    )
    try:
        async with (
            ws_connect(url_a, conversation.pk, cookie) as a,
            ws_connect(url_b, conversation.pk, cookie) as b,
        ):
            await a.send(json.dumps({"text": "Broadcast this"}))
            await until_delta(b)
            # A third tab opens on process B mid-stream: it catches up from Redis.
            async with ws_connect(url_b, conversation.pk, cookie) as c:
                snapshot = await until_delta(c)
                assert "innerHTML:#message-" in snapshot
                seen = html.unescape(snapshot.split(">", 1)[1].rsplit("</div>", 1)[0])
                c_deltas, c_final = await read_to_end(c)
            a_deltas, _ = await read_to_end(a)
            b_rest, _ = await read_to_end(b)
        assert text.endswith("".join(b_rest))
        assert seen + "".join(c_deltas) == text
        assert "".join(a_deltas) == text
        assert 'data-status="complete"' in c_final

        # Stop from process B a reply that process A is generating.
        fake_api.script(Scripted(text="again " * 300, tokens_per_second=30))
        async with (
            ws_connect(url_a, conversation.pk, cookie) as a,
            ws_connect(url_b, conversation.pk, cookie) as b,
        ):
            await a.send(json.dumps({"text": "And now stop"}))
            await until_delta(b)
            await b.send(json.dumps({"type": "stop"}))
            _, final = await read_to_end(a)
        assert 'data-status="stopped"' in final
    finally:
        await sync_to_async(stop)(first)
        await sync_to_async(stop)(second)
    replies = [m async for m in conversation.messages.filter(role="assistant").order_by("id")]
    assert [r.status for r in replies] == ["complete", "stopped"]
    assert replies[0].content == text
