"""The text of replies being generated, readable from any process (for catch-up).

With Redis each flushed chunk is APPENDed to a key (O(n) in total, never the whole text
again); without Redis there is one process, and its registry already holds the text.
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

from conversations.generations import generations

KEY = "chatsite:reply:{}:text"
TTL_SECONDS = 3600

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def _redis() -> aioredis.Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client


def shared() -> bool:
    """True when the text is kept for other processes (Redis); else append() does nothing."""
    return bool(settings.REDIS_URL)


async def append(reply_id: int, text: str) -> None:
    """Record a flushed chunk of a reply."""
    client = _redis()
    if client is not None:
        key = KEY.format(reply_id)
        async with client.pipeline(transaction=False) as pipe:
            pipe.append(key, text.encode())
            pipe.expire(key, TTL_SECONDS)
            await pipe.execute()


async def snapshot(reply_id: int) -> str | None:
    """The text generated so far, or None when no process knows it."""
    local = generations.get(reply_id)
    if local is not None:
        return local.text
    client = _redis()
    if client is None:
        return None
    raw = await client.get(KEY.format(reply_id))
    return raw.decode() if raw is not None else None


async def discard(reply_id: int) -> None:
    client = _redis()
    if client is not None:
        await client.delete(KEY.format(reply_id))


def reset() -> None:
    _clients.clear()
