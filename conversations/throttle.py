"""Limits checked before any call to Claude: rate limits per user and global, and a
per-process cap on concurrent calls.

The rate limits are sliding window counters (`limits`' SlidingWindowCounterRateLimiter): per
limit, this window's count plus the last window's weighted by how much of it still overlaps,
two counters in memory or in Redis whatever a request costs. The moving window used before
kept an entry per token: a request of 2,000 tokens pushed 2,000 list entries (in Redis, from
a Lua loop), and in memory its expiry sweep held each limit's lock across a hop to a thread
(`asyncio.to_thread`) about 25 times a second, so a turn's check waited behind it: at 200
streams, 35-42 ms at p99 before the turn could start (bench/README.md).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
import weakref
from dataclasses import dataclass

from django.conf import settings
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SlidingWindowCounterRateLimiter] = (
    weakref.WeakKeyDictionary()
)
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class RateLimited(Exception):
    """Over a limit; the message says which and when to retry."""

    def __init__(self, message: str, retry_in: float, scope: str) -> None:
        super().__init__(message)
        self.retry_in = retry_in
        self.scope = scope


@dataclass(frozen=True)
class Rule:
    scope: str  # "user" or "global"
    kind: str  # "requests" or "tokens"
    setting: str


RULES = (
    Rule("user", "requests", "RATE_LIMIT_USER_REQUESTS"),
    Rule("user", "tokens", "RATE_LIMIT_USER_TOKENS"),
    Rule("global", "requests", "RATE_LIMIT_GLOBAL_REQUESTS"),
    Rule("global", "tokens", "RATE_LIMIT_GLOBAL_TOKENS"),
)


def _storage() -> Storage:
    if settings.REDIS_URL:
        uri = "async+" + settings.REDIS_URL
        return RedisStorage(uri, implementation="redispy", key_prefix="chatsite-limits")
    return MemoryStorage()


@functools.lru_cache(maxsize=64)
def _parse(value: str) -> RateLimitItem:
    return parse(value)


def limiter() -> SlidingWindowCounterRateLimiter:
    loop = asyncio.get_running_loop()
    found = _limiters.get(loop)
    if found is None:
        found = _limiters[loop] = SlidingWindowCounterRateLimiter(_storage())
    return found


async def check_rate_limits(*, user_id: int, tokens: int) -> None:
    """Count one request of about `tokens` tokens; raise RateLimited when over a limit."""
    active = [(rule, _parse(value)) for rule in RULES if (value := getattr(settings, rule.setting))]
    ident = {"user": f"user:{user_id}", "global": "global"}
    lim = limiter()
    # Test every limit first, so a refused request uses up none of them.
    for rule, item in active:
        cost = tokens if rule.kind == "tokens" else 1
        if not await lim.test(item, rule.kind, ident[rule.scope], cost=cost):
            stats = await lim.get_window_stats(item, rule.kind, ident[rule.scope])
            retry_in = max(1.0, stats.reset_time - time.time())
            who = "You are" if rule.scope == "user" else "Everyone together is"
            raise RateLimited(
                f"{who} sending too many {rule.kind} right now. "
                f"Please try again in {wait_text(retry_in)}.",
                retry_in,
                rule.scope,
            )
    for rule, item in active:
        await lim.hit(
            item, rule.kind, ident[rule.scope], cost=tokens if rule.kind == "tokens" else 1
        )


def wait_text(seconds: float) -> str:
    """How long to wait, in the unit a person would use: "45 seconds", "44 minutes"."""
    if seconds < 90:
        unit, size = "second", 1
    elif seconds < 2 * 3600:
        unit, size = "minute", 60
    else:
        unit, size = "hour", 3600
    count = max(1, math.ceil(seconds / size))
    return f"{count} {unit}{'' if count == 1 else 's'}"


def call_slots() -> asyncio.Semaphore:
    """This process's cap on concurrent calls to Claude."""
    loop = asyncio.get_running_loop()
    found = _slots.get(loop)
    if found is None:
        found = _slots[loop] = asyncio.Semaphore(settings.CLAUDE_MAX_CONCURRENT_CALLS)
    return found


def reset() -> None:
    """Forget limiter state holders (tests change settings)."""
    _limiters.clear()
    _slots.clear()
