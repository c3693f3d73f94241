"""The one place that builds the AsyncAnthropic client from settings."""

from __future__ import annotations

import asyncio
import sys
import weakref
from functools import lru_cache

import anthropic
from django.conf import settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anthropic.AsyncAnthropic] = (
    weakref.WeakKeyDictionary()
)


@lru_cache(maxsize=1)
def demo_api():
    """The in-process fake Anthropic API that serves demo mode."""
    from fakeanthropic import FakeAnthropic

    return FakeAnthropic(ttft=settings.DEMO_TTFT, tokens_per_second=settings.DEMO_TOKENS_PER_SECOND)


def build_client() -> anthropic.AsyncAnthropic:
    """Build a new client: the real API (or ANTHROPIC_BASE_URL) with a key, else the demo."""
    # Retries are ours (conversations.claude.streaming), so each attempt passes the breaker.
    options = {"timeout": settings.CLAUDE_TIMEOUT, "max_retries": 0}
    if settings.DEMO_MODE:
        from fakeanthropic.transport import fake_client_kwargs

        return anthropic.AsyncAnthropic(api_key="demo", **fake_client_kwargs(demo_api()), **options)
    if settings.CLAUDE_HTTP_CLIENT == "aiohttp":
        # The SDK's aiohttp transport (`anthropic[aiohttp]`): reading a streamed reply costs
        # half the CPU per event of the default httpx2/h11 stack (bench/README.md).
        options["http_client"] = anthropic.DefaultAioHttpClient()
    return anthropic.AsyncAnthropic(
        api_key=settings.ANTHROPIC_API_KEY,
        base_url=settings.ANTHROPIC_BASE_URL or None,
        **options,
    )


def get_client() -> anthropic.AsyncAnthropic:
    """Return this event loop's client (httpx2 connection pools belong to one loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = build_client()
    return client


async def aclose_client() -> None:
    """Close and forget the running loop's client (its aiohttp session belongs to it)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.close()


def close_clients_at_shutdown() -> None:
    """Under daphne, close the loop's client before the server stops.

    Otherwise its aiohttp session is still open when the interpreter exits. aiohttp then
    complains from a finaliser, by which time logging can no longer import anything: a
    traceback at every stop. daphne runs on Twisted's asyncio reactor, and a "before
    shutdown" trigger that returns a Deferred is awaited before the loop stops. Served by
    anything else, there is no reactor and nothing is registered.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "addSystemEventTrigger"):
        return
    from twisted.internet.defer import Deferred

    def close() -> Deferred:
        return Deferred.fromFuture(asyncio.ensure_future(aclose_client()))

    reactor.addSystemEventTrigger("before", "shutdown", close)


def reset_clients() -> None:
    """Close and forget cached clients (tests change settings between runs). A client's
    aiohttp session is closed on its own loop, when that loop is open and idle."""
    for loop, client in list(_clients.items()):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(client.close())
    _clients.clear()
