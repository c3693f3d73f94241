"""An httpx2 transport that runs an ASGI app in-process and really streams its body.

``httpx2.ASGITransport`` waits for the whole body before returning; this one returns the
response as soon as ``http.response.start`` arrives and hands body chunks over through a
queue while the app keeps running as a task. Read timeouts of the request
(``timeout=`` of the SDK / httpx2) are honoured while waiting for the start and for each
chunk (-> ``httpx2.ReadTimeout``). Closing the response cancels the app task. An app
exception after the start surfaces as ``httpx2.ReadError`` while reading; a
``DropConnection`` (the fake's deliberate abort) as ``httpx2.RemoteProtocolError``, as
uvicorn's aborted connection does over loopback.

    client = anthropic.AsyncAnthropic(api_key="demo", **fake_client_kwargs(app))
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from .httputil import Message
from .sse import DropConnection

FAKE_BASE_URL = "http://fake-anthropic.local"
_END = object()


def _read_timeout(request: httpx2.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    return timeout.get("read")


class _QueueStream(httpx2.AsyncByteStream):
    def __init__(
        self,
        queue: asyncio.Queue[Any],
        task: asyncio.Task[None],
        disconnected: asyncio.Event,
        timeout: float | None,
    ) -> None:
        self._queue = queue
        self._task = task
        self._disconnected = disconnected
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self._timeout)
            except TimeoutError as exc:
                raise httpx2.ReadTimeout("timed out reading the fake response") from exc
            if item is _END:
                return
            if isinstance(item, DropConnection):
                raise httpx2.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                ) from item
            if isinstance(item, BaseException):
                raise httpx2.ReadError(f"connection aborted: {item!r}") from item
            yield item

    async def aclose(self) -> None:
        self._disconnected.set()
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class StreamingASGITransport(httpx2.AsyncBaseTransport):
    """Run ``app`` per request as a task and stream its response body."""

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        loop = asyncio.get_running_loop()
        started: asyncio.Future[tuple[int, list[Any]]] = loop.create_future()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        disconnected = asyncio.Event()
        body_sent = False
        complete = False

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal complete
            if disconnected.is_set() or complete:
                return
            if message["type"] == "http.response.start":
                if not started.done():
                    started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk and request.method != "HEAD":
                    queue.put_nowait(chunk)
                if not message.get("more_body", False):
                    complete = True
                    queue.put_nowait(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                elif not complete:
                    queue.put_nowait(exc)
                return
            if not started.done():
                started.set_exception(RuntimeError("ASGI app returned without a response"))
            elif not complete:
                queue.put_nowait(RuntimeError("ASGI app returned without completing the body"))

        task = asyncio.ensure_future(run())
        timeout = _read_timeout(request)
        try:
            status, headers = await asyncio.wait_for(asyncio.shield(started), timeout)
        except TimeoutError as exc:
            disconnected.set()
            task.cancel()
            raise httpx2.ReadTimeout("timed out waiting for the fake response") from exc
        except DropConnection as exc:
            raise httpx2.RemoteProtocolError("Server disconnected without a response") from exc
        except BaseException:
            disconnected.set()
            task.cancel()
            raise
        stream = _QueueStream(queue, task, disconnected, timeout)
        return httpx2.Response(status, headers=headers, stream=stream)


def fake_client_kwargs(app: Any, base_url: str = FAKE_BASE_URL, **client_kwargs: Any) -> dict:
    """``base_url`` + ``http_client`` for ``anthropic.AsyncAnthropic(api_key=..., **kwargs)``."""
    http_client = httpx2.AsyncClient(
        transport=StreamingASGITransport(app), base_url=base_url, **client_kwargs
    )
    return {"base_url": base_url, "http_client": http_client}
