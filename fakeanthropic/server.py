"""Serve a FakeAnthropic app with uvicorn: in a background thread, or from ``__main__``.

    base_url, stop = serve_in_thread(app)          # free loopback port
    try:
        client = anthropic.AsyncAnthropic(api_key="demo", base_url=base_url)
        ...
    finally:
        stop()

or ``with serving(app) as base_url: ...`` / ``async with aserving(app) as base_url: ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn

from .sse import DropConnection


class _HideDrops(logging.Filter):
    """Drop uvicorn's traceback for the deliberate DropConnection fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDrops) for f in logger.filters):
        logger.addFilter(_HideDrops())


def uvicorn_config(app: Any, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "loop": "auto",
        "http": "httptools",
        "lifespan": "off",
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 1,
        "backlog": 4096,
        "timeout_keep_alive": 30,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def _wait_accepting(host: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def serve_in_thread(
    app: Any = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    **uvicorn_options: Any,
) -> tuple[str, Callable[[], None]]:
    """Start uvicorn on ``host:port`` (0: a free port) in a daemon thread.

    Returns ``(base_url, stop)`` once the socket accepts connections; ``stop()`` shuts the
    server down and joins the thread (idempotent). ``app`` defaults to a new FakeAnthropic.
    """
    if app is None:
        from .app import FakeAnthropic

        app = FakeAnthropic()
    install_log_filter()
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP. Without it a reused connection's first event waited for
    # the client's delayed ACK of the headers (Nagle): ~40 ms when the first token came
    # sooner than that.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, **uvicorn_options))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed startup, too
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"fakeanthropic:{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if errors or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"fake Anthropic server failed to start: {errors!r}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("fake Anthropic server did not start in time")
        time.sleep(0.005)
    _wait_accepting(host, bound_port, deadline)

    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        server.should_exit = True
        thread.join(5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        sock.close()

    return f"http://{host}:{bound_port}", stop


@contextlib.contextmanager
def serving(app: Any = None, **kwargs: Any) -> Iterator[str]:
    """``with serving(app) as base_url:`` -- serve_in_thread as a context manager."""
    base_url, stop = serve_in_thread(app, **kwargs)
    try:
        yield base_url
    finally:
        stop()


@contextlib.asynccontextmanager
async def aserving(app: Any = None, **kwargs: Any) -> AsyncIterator[str]:
    """``async with aserving(app) as base_url:`` without blocking the running loop."""
    base_url, stop = await asyncio.to_thread(serve_in_thread, app, **kwargs)
    try:
        yield base_url
    finally:
        await asyncio.to_thread(stop)


def serve_forever(app: Any, host: str, port: int, **uvicorn_options: Any) -> None:
    """Serve in the foreground (used by ``python -m fakeanthropic``)."""
    install_log_filter()
    uvicorn.Server(uvicorn_config(app, host=host, port=port, **uvicorn_options)).run()
