"""SSE encoding and paced streaming of one /v1/messages response.

Event bytes are built from templates: only the delta text goes through ``json.dumps``,
and the encoded delta chunks of a reply are memoised per (text, pieces, tokens_per_delta),
so hundreds of concurrent streams of the same demo reply cost little more than the sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .httputil import SSE_HEADERS, Receive, Send, dumps
from .scripting import Plan
from .tokens import split_tokens


class DropConnection(Exception):
    """Raised inside the app after the body started: the server aborts the connection."""


def event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


CONTENT_BLOCK_START = event(
    "content_block_start",
    b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
)
PING = event("ping", b'{"type":"ping"}')
CONTENT_BLOCK_STOP = event("content_block_stop", b'{"type":"content_block_stop","index":0}')
MESSAGE_STOP = event("message_stop", b'{"type":"message_stop"}')
_DELTA_HEAD = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":'
)
_DELTA_TAIL = b"}}\n\n"
OVERLOADED_EVENT = event(
    "error", b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
)


def delta_event(text: str) -> bytes:
    return _DELTA_HEAD + json.dumps(text, ensure_ascii=False).encode() + _DELTA_TAIL


@lru_cache(maxsize=512)
def encode_deltas(source: str, n_pieces: int, per_delta: int) -> tuple[tuple[bytes, int], ...]:
    """(event bytes, tokens in it) for each delta of the first ``n_pieces`` of ``source``."""
    pieces = split_tokens(source)[:n_pieces]
    per_delta = max(1, per_delta)
    out = []
    for i in range(0, len(pieces), per_delta):
        group = pieces[i : i + per_delta]
        out.append((delta_event("".join(group)), len(group)))
    return tuple(out)


def message_start(msg_id: str, model: str, usage: dict[str, Any]) -> bytes:
    message = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    return event("message_start", dumps({"type": "message_start", "message": message}))


def message_delta(stop_reason: str, output_tokens: int) -> bytes:
    return event(
        "message_delta",
        b'{"type":"message_delta","delta":{"stop_reason":'
        + json.dumps(stop_reason).encode()
        + b',"stop_sequence":null},"usage":{"output_tokens":'
        + str(output_tokens).encode()
        + b"}}",
    )


async def wait_stall(seconds: float | None) -> None:
    if seconds is None:
        return
    if seconds == float("inf"):
        await asyncio.Future()  # until cancelled (client disconnect / shutdown)
    await asyncio.sleep(seconds)


async def stream_message(
    send: Send,
    plan: Plan,
    *,
    t0: float,
    msg_id: str,
    model: str,
    usage: dict[str, Any],
    ttft: float,
    tokens_per_second: float,
    tokens_per_delta: int,
    headers: list[tuple[bytes, bytes]],
    on_start: Callable[[], None],
) -> None:
    """Send the full SSE response for ``plan``; pacing is against absolute deadlines."""
    loop = asyncio.get_running_loop()
    script = plan.script
    await wait_stall(script.stall_seconds)
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    on_start()
    await send(
        {
            "type": "http.response.body",
            "body": message_start(msg_id, model, usage) + CONTENT_BLOCK_START + PING,
            "more_body": True,
        }
    )
    deltas = encode_deltas(plan.source, len(plan.pieces), tokens_per_delta)
    interval = tokens_per_delta / tokens_per_second if tokens_per_second > 0 else 0.0
    error_after = script.error_after_tokens
    drop_after = script.drop_after_tokens
    first = t0 + ttft
    sent = 0
    for k, (chunk, n) in enumerate(deltas):
        if error_after is not None and sent >= error_after:
            break
        if drop_after is not None and sent >= drop_after:
            raise DropConnection
        delay = first + k * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        sent += n
    if error_after is not None:
        await send({"type": "http.response.body", "body": OVERLOADED_EVENT, "more_body": False})
        return
    if drop_after is not None:
        raise DropConnection
    tail = CONTENT_BLOCK_STOP + message_delta(plan.stop_reason, plan.output_tokens) + MESSAGE_STOP
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def until_disconnect(receive: Receive) -> None:
    """Return once the client has disconnected."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def run_watching_disconnect(coro: Any, receive: Receive) -> bool:
    """Run ``coro`` but cancel it as soon as the client disconnects.

    Returns True if the coroutine finished, False if the client went away first.
    Exceptions of the coroutine (e.g. DropConnection) propagate.
    """
    work = asyncio.ensure_future(coro)
    watcher = asyncio.ensure_future(until_disconnect(receive))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not work.done():
            work.cancel()
        watcher.cancel()
    if work.done() and not work.cancelled():
        work.result()
        return True
    await asyncio.wait({work})
    return False
