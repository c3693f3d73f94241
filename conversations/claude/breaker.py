"""A circuit breaker shared by every process through the cache (Redis when configured)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from chatsite import cacheio
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
    return await cacheio.call("get", STATE_KEY, CLOSED)


STATE_KEYS = (STATE_KEY, UNTIL_KEY)  # what `allow` reads


async def allow(current: dict | None = None) -> bool:
    """Let a call through (True if it is the half-open probe), or raise CircuitOpen.

    `current`: STATE_KEYS as the caller just read them with its own keys (one trip to the
    cache, a hop to a thread with Redis, before the request instead of two)."""
    if current is None:
        current = await cacheio.call("get_many", list(STATE_KEYS))
    if current.get(STATE_KEY, CLOSED) == CLOSED:
        return False
    until = current.get(UNTIL_KEY, 0.0)
    now = time.time()
    if now < until:
        raise CircuitOpen(until - now)
    # Cool-down over: exactly one caller (across processes) probes; the rest fail fast.
    if await cacheio.call("add", PROBE_KEY, 1, timeout=settings.CLAUDE_BREAKER_COOLDOWN):
        await cacheio.call("set", STATE_KEY, HALF_OPEN, timeout=None)
        set_breaker_state(HALF_OPEN)
        return True
    raise CircuitOpen(settings.CLAUDE_BREAKER_COOLDOWN)


async def abandon_probe() -> None:
    """The probe ended without a verdict: let the next caller probe at once."""
    await cacheio.call("set_many", {STATE_KEY: OPEN, UNTIL_KEY: time.time()}, timeout=None)
    await cacheio.call("delete", PROBE_KEY)
    set_breaker_state(OPEN)


async def record_success() -> None:
    """A call worked: close the circuit and forget earlier failures."""
    current = await cacheio.call("get_many", [STATE_KEY, FAILURES_KEY])
    if current.get(STATE_KEY, CLOSED) != CLOSED:
        await cacheio.call("set", STATE_KEY, CLOSED, timeout=None)
        await cacheio.call("delete_many", [UNTIL_KEY, PROBE_KEY])
        set_breaker_state(CLOSED)
    if FAILURES_KEY in current:
        await cacheio.call("delete", FAILURES_KEY)


async def record_failure() -> None:
    """An outage-like failure: open the circuit after enough of them in the window."""
    if not await cacheio.call("add", FAILURES_KEY, 1, timeout=settings.CLAUDE_BREAKER_WINDOW):
        try:
            failures = await cacheio.call("incr", FAILURES_KEY)
        except ValueError:  # expired between add and incr
            failures = 1
            await cacheio.call("set", FAILURES_KEY, 1, timeout=settings.CLAUDE_BREAKER_WINDOW)
    else:
        failures = 1
    probing = await cacheio.call("get", STATE_KEY, CLOSED) == HALF_OPEN
    if probing or failures >= settings.CLAUDE_BREAKER_THRESHOLD:
        await open_circuit()


async def open_circuit() -> None:
    await cacheio.call(
        "set_many",
        {STATE_KEY: OPEN, UNTIL_KEY: time.time() + settings.CLAUDE_BREAKER_COOLDOWN},
        timeout=None,
    )
    await cacheio.call("delete", PROBE_KEY)
    set_breaker_state(OPEN)


def current_state_sync() -> str:
    """The state for page rendering (sync views)."""
    return cache.get(STATE_KEY, CLOSED)
