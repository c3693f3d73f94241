"""A circuit breaker shared by every process through the cache (Redis when configured)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from ops.metrics import set_breaker_state

STATE_KEY = "claude:breaker:state"
UNTIL_KEY = "claude:breaker:open_until"
FAILURES_KEY = "claude:breaker:failures"
PROBE_KEY = "claude:breaker:probe"

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpen(Exception):
    """Claude has failed repeatedly; calls fail fast until the cool-down ends."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"circuit open, retry in {retry_in:.0f} s")
        self.retry_in = retry_in


async def state() -> str:
    return await cache.aget(STATE_KEY, CLOSED)


async def allow() -> bool:
    """Let a call through (True if it is the half-open probe), or raise CircuitOpen."""
    current = await cache.aget_many([STATE_KEY, UNTIL_KEY])
    if current.get(STATE_KEY, CLOSED) == CLOSED:
        return False
    until = current.get(UNTIL_KEY, 0.0)
    now = time.time()
    if now < until:
        raise CircuitOpen(until - now)
    # Cool-down over: exactly one caller (across processes) probes; the rest fail fast.
    if await cache.aadd(PROBE_KEY, 1, timeout=settings.CLAUDE_BREAKER_COOLDOWN):
        await cache.aset(STATE_KEY, HALF_OPEN, timeout=None)
        set_breaker_state(HALF_OPEN)
        return True
    raise CircuitOpen(settings.CLAUDE_BREAKER_COOLDOWN)


async def abandon_probe() -> None:
    """The probe ended without a verdict: let the next caller probe at once."""
    await cache.aset_many({STATE_KEY: OPEN, UNTIL_KEY: time.time()}, timeout=None)
    await cache.adelete(PROBE_KEY)
    set_breaker_state(OPEN)


async def record_success() -> None:
    """A call worked: close the circuit and forget earlier failures."""
    if await cache.aget(STATE_KEY, CLOSED) != CLOSED:
        await cache.aset(STATE_KEY, CLOSED, timeout=None)
        await cache.adelete_many([UNTIL_KEY, PROBE_KEY])
        set_breaker_state(CLOSED)
    await cache.adelete(FAILURES_KEY)


async def record_failure() -> None:
    """An outage-like failure: open the circuit after enough of them in the window."""
    if not await cache.aadd(FAILURES_KEY, 1, timeout=settings.CLAUDE_BREAKER_WINDOW):
        try:
            failures = await cache.aincr(FAILURES_KEY)
        except ValueError:  # expired between add and incr
            failures = 1
            await cache.aset(FAILURES_KEY, 1, timeout=settings.CLAUDE_BREAKER_WINDOW)
    else:
        failures = 1
    probing = await cache.aget(STATE_KEY, CLOSED) == HALF_OPEN
    if probing or failures >= settings.CLAUDE_BREAKER_THRESHOLD:
        await open_circuit()


async def open_circuit() -> None:
    await cache.aset_many(
        {STATE_KEY: OPEN, UNTIL_KEY: time.time() + settings.CLAUDE_BREAKER_COOLDOWN},
        timeout=None,
    )
    await cache.adelete(PROBE_KEY)
    set_breaker_state(OPEN)


def current_state_sync() -> str:
    """The state for page rendering (sync views)."""
    return cache.get(STATE_KEY, CLOSED)
