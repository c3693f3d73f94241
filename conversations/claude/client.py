"""The one place that builds the AsyncAnthropic client from settings."""

from __future__ import annotations

import asyncio
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


def reset_clients() -> None:
    """Forget cached clients (tests change settings between runs)."""
    _clients.clear()
