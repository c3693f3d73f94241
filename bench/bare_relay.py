"""The floor for `cpu_ms_per_1k_tokens`: a minimal WebSocket relay of the same stream.

Same SDK call (`messages.create(stream=True)`, one client per process on the SDK's aiohttp
transport, its raw events parsed with `orjson.loads` as conversations.claude.streaming
does, without importing Django), same fake API,
same coalescing as conversations.claude.streaming.DeltaRelay (the first frame at once, then
at most STREAM_FRAMES_PER_SECOND), the same HTML delta frames and a final
`<article ... data-status=...>` frame; no database, no channel layer, no auth, no
templates or markdown. Served by daphne like the app:

    daphne -b 127.0.0.1 -p PORT bench.bare_relay:application
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import os

import anthropic
import orjson
from anthropic._streaming import SSEDecoder, async_iter_response_bytes

from chatsite.pacing import FramePacer
from chatsite.wsframes import skip_frame_log_formatting, write_frames_at_once

skip_frame_log_formatting()  # as the app does: the same server's cost per frame
write_frames_at_once()

FRAMES_PER_SECOND = float(os.environ.get("STREAM_FRAMES_PER_SECOND", "20"))
MODEL = os.environ.get("CLAUDE_MODEL", "claude-sonnet-4-6")
_ids = itertools.count(1)
_clients: dict[int, anthropic.AsyncAnthropic] = {}


def client() -> anthropic.AsyncAnthropic:
    loop = id(asyncio.get_running_loop())
    if loop not in _clients:
        _clients[loop] = anthropic.AsyncAnthropic(
            api_key=os.environ["ANTHROPIC_API_KEY"],
            base_url=os.environ["ANTHROPIC_BASE_URL"],
            max_retries=0,
            timeout=60,
            http_client=anthropic.DefaultAioHttpClient(),  # the app's transport (its default)
        )
    return _clients[loop]


class Coalescer(FramePacer):
    """DeltaRelay's pacing (`chatsite.pacing`), sending straight to the socket."""

    def __init__(self, send, reply_id: int) -> None:
        super().__init__(FRAMES_PER_SECOND)
        self.send = send
        self.head = f'<div hx-swap-oob="beforeend:#message-{reply_id}-stream">'

    async def _frame(self, text: str) -> None:
        await self.send({"type": "websocket.send", "text": f"{self.head}{html.escape(text)}</div>"})


async def relay(send, text: str) -> None:
    reply_id = next(_ids)
    await send(
        {
            "type": "websocket.send",
            "text": f'<div hx-swap-oob="beforeend:#messages"><article id="message-{reply_id}" '
            f'data-status="streaming"><div id="message-{reply_id}-stream"></div></article></div>',
        }
    )
    coalescer = Coalescer(send, reply_id)
    parts: list[str] = []
    status = "complete"
    try:
        stream = await client().messages.create(
            model=MODEL,
            max_tokens=2048,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
                    ],
                }
            ],
            stream=True,
        )
        async with stream:  # the SDK's raw events, parsed as the app parses them
            async for sse in SSEDecoder().aiter_bytes(
                async_iter_response_bytes(stream.response, client())
            ):
                if sse.event == "content_block_delta":
                    delta = orjson.loads(sse.data)["delta"]
                    if delta.get("type") == "text_delta":
                        parts.append(delta["text"])
                        coalescer.push(delta["text"])
                elif sse.event == "error":
                    raise RuntimeError(sse.data)
    except Exception:
        status = "failed"
    finally:
        coalescer.close()
        await coalescer.drained()
    body = html.escape("".join(parts))
    await send(
        {
            "type": "websocket.send",
            "text": f'<article id="message-{reply_id}" data-status="{status}">{body}</article>',
        }
    )


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    running: set[asyncio.Task] = set()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        if message["type"] == "websocket.receive" and message.get("text"):
            task = asyncio.eager_task_factory(  # as the app starts a reply's task
                asyncio.get_running_loop(), relay(send, json.loads(message["text"])["text"])
            )
            running.add(task)
            task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running, return_exceptions=True)
