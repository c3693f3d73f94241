"""Small ASGI/HTTP helpers: ids, headers, JSON and error responses."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def make_id(prefix: str) -> str:
    """An id like the real ones: ``msg_011C...`` (24 base58 characters after the prefix)."""
    raw = int.from_bytes(os.urandom(18), "big")
    chars = []
    for _ in range(21):
        raw, r = divmod(raw, 58)
        chars.append(_B58[r])
    return f"{prefix}_011C" + "".join(chars)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class RateLimitHeaders:
    """``anthropic-ratelimit-*`` headers, re-rendered at most once a second."""

    LIMITS = {"requests": 4000, "tokens": 2_000_000, "input-tokens": 1_600_000,
              "output-tokens": 400_000}  # fmt: skip

    def __init__(self) -> None:
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []

    def get(self) -> list[tuple[bytes, bytes]]:
        now = int(time.time())
        if now != self._second:
            reset = rfc3339(now + 60).encode()
            headers = []
            for name, limit in self.LIMITS.items():
                prefix = f"anthropic-ratelimit-{name}-".encode()
                headers.append((prefix + b"limit", str(limit).encode()))
                headers.append((prefix + b"remaining", str(limit - 1).encode()))
                headers.append((prefix + b"reset", reset))
            self._headers = headers
            self._second = now
        return self._headers


JSON_CT = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(
    send: Send,
    status: int,
    obj: Any,
    request_id: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [JSON_CT]
    if request_id:
        headers.append((b"request-id", request_id.encode()))
    if extra:
        headers.extend(extra)
    await send_bytes(send, status, dumps(obj), headers)


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


async def send_error(
    send: Send,
    status: int,
    error_type: str,
    message: str,
    request_id: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    request_id = request_id or make_id("req")
    await send_json(send, status, error_body(error_type, message, request_id), request_id, extra)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def header_dict(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def api_key_of(headers: dict[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return None
