"""The ASGI application: routing, auth, recording and the /_fake control endpoints.

Routes
------
``POST /v1/messages``                  streaming (``"stream": true``) or not
``POST /v1/messages/count_tokens``     ``{"input_tokens": N}``
``/v1/messages/batches...``            see batches.py
``POST /_fake/script``                 JSON list of scripted replies (appended to the queue)
``POST /_fake/reset``                  clear script queue, recorded requests, cache, batches
``GET  /_fake/requests``               recorded /v1/messages requests, newest last
``POST /_fake/config``                 ``{"ttft", "tokens_per_second", "tokens_per_delta",
                                       "batch_seconds_per_request"}`` (any subset)
``GET  /_fake/health``                 ``{"ok": true}``

Control endpoints need no API key; /v1 endpoints need ``x-api-key`` or
``Authorization: Bearer`` (any non-empty key, or exactly ``api_key`` when set).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .batches import BatchStore
from .cache import PromptCache
from .httputil import (
    RateLimitHeaders,
    Receive,
    Scope,
    Send,
    api_key_of,
    header_dict,
    make_id,
    read_body,
    send_error,
    send_json,
)
from .messages import handle_count_tokens, handle_messages
from .scripting import Scripted
from .sse import run_watching_disconnect

_CONFIG_FIELDS = {
    "ttft": float,
    "tokens_per_second": float,
    "tokens_per_delta": int,
    "batch_seconds_per_request": float,
}
_RECORDED_HEADERS_SKIP = {"authorization", "x-api-key", "content-length", "host"}


class FakeAnthropic:
    """An ASGI app speaking the Anthropic Messages API wire protocol."""

    def __init__(
        self,
        *,
        ttft: float = 0.3,
        tokens_per_second: float = 50.0,
        tokens_per_delta: int = 3,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        batch_seconds_per_request: float = 0.05,
        batch_live_counts: bool = False,
        max_recorded_requests: int = 10_000,
    ) -> None:
        self.ttft = ttft
        self.tokens_per_second = tokens_per_second
        self.tokens_per_delta = max(1, tokens_per_delta)
        self.api_key = api_key
        self.clock = clock
        self.batch_seconds_per_request = batch_seconds_per_request
        self.batch_live_counts = batch_live_counts
        self._clock0 = clock()
        self._wall0 = time.time()
        self._script: deque[Scripted] = deque()
        self.requests: list[dict[str, Any]] = []  # oldest half dropped past the maximum
        self.max_recorded_requests = max_recorded_requests
        self.in_flight = 0  # /v1/messages requests being answered right now
        self.cache = PromptCache(clock)
        self.batches = BatchStore(self)
        self.ratelimit = RateLimitHeaders()

    # -- Python control API -------------------------------------------------------------
    def script(self, *replies: Scripted | str | dict[str, Any]) -> None:
        """Queue scripted replies, consumed one per /v1/messages request (FIFO)."""
        self._script.extend(Scripted.from_json(r) for r in replies)

    def next_script(self) -> Scripted | None:
        try:
            return self._script.popleft()
        except IndexError:
            return None

    @property
    def pending_scripts(self) -> int:
        return len(self._script)

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()
        self.cache.clear()
        self.batches.clear()

    def configure(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in _CONFIG_FIELDS:
                raise ValueError(f"unknown config field {name!r}")
            setattr(self, name, _CONFIG_FIELDS[name](value))
        self.tokens_per_delta = max(1, self.tokens_per_delta)

    def wall_time(self, clock_time: float) -> float:
        """Wall-clock seconds for a reading of the injected clock."""
        return self._wall0 + (clock_time - self._clock0)

    # -- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websockets etc.: not supported, just return

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = asyncio.get_running_loop().time()
        method = scope["method"]
        path = scope["path"].rstrip("/") or "/"
        raw = await read_body(receive)
        if raw is None:
            return  # client went away before sending the body
        request_id = make_id("req")

        if path.startswith("/_fake/"):
            await self._control(send, method, path, raw, request_id)
            return

        headers = header_dict(scope)
        body: Any = None
        body_error = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body_error = "Request body is not valid JSON"
        is_messages = path == "/v1/messages" and method == "POST"
        if is_messages:
            if len(self.requests) >= self.max_recorded_requests:
                del self.requests[: len(self.requests) // 2 + 1]
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "body": body,
                    "headers": {
                        k: v for k, v in headers.items() if k not in _RECORDED_HEADERS_SKIP
                    },
                    "api_key": api_key_of(headers),
                    "time": self.clock(),
                }
            )

        key = api_key_of(headers)
        if key is None:
            msg = "x-api-key header is required"
            await send_error(send, 401, "authentication_error", msg, request_id)
            return
        if self.api_key is not None and key != self.api_key:
            await send_error(send, 401, "authentication_error", "invalid x-api-key", request_id)
            return
        if body_error:
            await send_error(send, 400, "invalid_request_error", body_error, request_id)
            return

        if is_messages:
            self.in_flight += 1
            try:
                await run_watching_disconnect(
                    handle_messages(self, send, body, api_key=key, request_id=request_id, t0=t0),
                    receive,
                )
            finally:
                self.in_flight -= 1
        elif path == "/v1/messages/count_tokens" and method == "POST":
            await handle_count_tokens(send, body, request_id)
        elif path == "/v1/messages/batches" or path.startswith("/v1/messages/batches/"):
            rest = [p for p in path[len("/v1/messages/batches") :].split("/") if p]
            query = scope.get("query_string", b"").decode("latin-1")
            await self.batches.handle(
                send, method, rest, body, query, _base_url(scope, headers), request_id
            )
        else:
            msg = f"Not found: {method} {path}"
            await send_error(send, 404, "not_found_error", msg, request_id)

    async def _control(self, send: Send, method: str, path: str, raw: bytes, rid: str) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            await send_error(send, 400, "invalid_request_error", "invalid JSON", rid)
            return
        try:
            if path == "/_fake/script" and method == "POST":
                replies = body if isinstance(body, list) else [body]
                self.script(*replies)
                await send_json(send, 200, {"queued": len(self._script)}, rid)
            elif path == "/_fake/reset" and method == "POST":
                self.reset()
                await send_json(send, 200, {"ok": True}, rid)
            elif path == "/_fake/requests" and method == "GET":
                await send_json(send, 200, self.requests, rid)
            elif path == "/_fake/config" and method == "POST":
                self.configure(**(body or {}))
                await send_json(send, 200, self.config_json(), rid)
            elif path == "/_fake/config" and method == "GET":
                await send_json(send, 200, self.config_json(), rid)
            elif path == "/_fake/health":
                await send_json(send, 200, {"ok": True}, rid)
            else:
                await send_error(send, 404, "not_found_error", f"Not found: {path}", rid)
        except (TypeError, ValueError) as exc:
            await send_error(send, 400, "invalid_request_error", str(exc), rid)

    def config_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CONFIG_FIELDS}


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"
