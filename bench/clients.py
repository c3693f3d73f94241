"""The two kinds of client every latency figure compares.

`AppTurn`: a browser-like WebSocket client of the app (session cookie + Origin) that sends
one message and records each frame's arrival. `direct_stream`: the same `anthropic` SDK
call the app makes, straight to the fake API, recording each text delta's arrival.
Times are `time.perf_counter()` of this process.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from dataclasses import dataclass, field

import anthropic
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import API_KEY, MODEL

DELTA_HEAD = '<div hx-swap-oob="beforeend:#message-'
DELTA_TAIL = "</div>"
FINAL_HEAD = '<article id="message-'
CREATED_HEAD = '<div hx-swap-oob="beforeend:#messages">'
ERROR_RE = re.compile(r'<div id="chat-error"[^>]*>(.+?)</div>', re.S)
STATUS_RE = re.compile(r'data-status="(\w+)"')
ORIGIN = "http://127.0.0.1"


def prompt(tokens: int, tag: object = "") -> str:
    """A user message asking the fake API for a reply of exactly `tokens` tokens."""
    return f"[[fake:tokens={tokens}]] Benchmark message {tag}".strip()


@dataclass
class AppTurn:
    """One message sent over a socket and the frames of its reply."""

    sent: float = 0.0
    created: float | None = None  # the user message + placeholder frame
    delta_times: list[float] = field(default_factory=list)
    delta_chars: list[int] = field(default_factory=list)  # cumulative unescaped characters
    finished: float | None = None
    status: str = ""  # the reply's data-status, "rejected", "closed" or "timeout"
    error: str = ""
    bytes: int = 0  # WebSocket payload bytes received from the send to the final frame
    frames: int = 0

    @property
    def ttft(self) -> float | None:
        return self.delta_times[0] - self.sent if self.delta_times else None

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def gaps(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Gaps between consecutive stream frames (deltas, then the final frame)."""
        times = [*self.delta_times, *([self.finished] if self.finished else [])]
        return [b - a for a, b in itertools.pairwise(times) if a >= since and b <= until]


async def open_socket(base: str, cookie: str, conversation_id: int) -> ClientConnection:
    return await connect(
        f"{base}/ws/conversations/{conversation_id}/",
        additional_headers=[("Cookie", f"sessionid={cookie}"), ("Origin", ORIGIN)],
        compression=None,
        max_size=None,
        open_timeout=60,
        ping_interval=None,
        close_timeout=2,
    )


async def run_turn(ws: ClientConnection, text: str, *, limit: float = 120) -> AppTurn:
    """Send one message on an open socket; read until the reply's final frame."""
    turn = AppTurn()
    clock = time.perf_counter
    chars = 0
    turn.sent = clock()
    await ws.send(json.dumps({"text": text}))
    try:
        async with asyncio.timeout(limit):
            async for frame in ws:
                now = clock()
                if isinstance(frame, bytes):
                    frame = frame.decode()
                turn.frames += 1
                turn.bytes += len(frame.encode())
                if frame.startswith(DELTA_HEAD):
                    body = frame[frame.index(">") + 1 : -len(DELTA_TAIL)]
                    chars += len(html.unescape(body)) if "&" in body else len(body)
                    turn.delta_times.append(now)
                    turn.delta_chars.append(chars)
                elif frame.startswith(FINAL_HEAD):
                    turn.finished = now
                    found = STATUS_RE.search(frame)
                    turn.status = found.group(1) if found else "unknown"
                    return turn
                elif frame.startswith(CREATED_HEAD):
                    turn.created = now
                else:
                    error = ERROR_RE.search(frame)
                    if error and error.group(1).strip():
                        turn.status, turn.error = "rejected", error.group(1).strip()
                        return turn
    except TimeoutError:
        turn.status = "timeout"
        return turn
    turn.status = "closed"
    return turn


async def app_turn(base: str, cookie: str, conversation_id: int, text: str) -> AppTurn:
    """Open a socket on the conversation, send one message, read the reply, close."""
    try:
        ws = await open_socket(base, cookie, conversation_id)
    except Exception as exc:  # refused, timed out, closed by the server
        return AppTurn(status="connect-failed", error=repr(exc))
    try:
        return await run_turn(ws, text)
    finally:
        await ws.close()


def direct_client(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=120)


@dataclass
class DirectStream:
    sent: float = 0.0
    delta_times: list[float] = field(default_factory=list)
    delta_chars: list[int] = field(default_factory=list)
    ok: bool = False
    error: str = ""

    @property
    def ttft(self) -> float | None:
        return self.delta_times[0] - self.sent if self.delta_times else None


async def direct_stream(client: anthropic.AsyncAnthropic, text: str) -> DirectStream:
    """The request the app makes for a new conversation, sent straight to the fake API."""
    result = DirectStream()
    clock = time.perf_counter
    chars = 0
    result.sent = clock()
    try:
        stream = await client.messages.create(
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
        async with stream:
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    result.delta_times.append(clock())
                    chars += len(event.delta.text)
                    result.delta_chars.append(chars)
        result.ok = True
    except Exception as exc:
        result.error = repr(exc)
    return result


async def at(when: float, coro):
    """Run `coro` at perf_counter time `when` (arrival schedules)."""
    delay = when - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    return await coro
