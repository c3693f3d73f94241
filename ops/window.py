"""Recent calls to Claude, kept in the cache (Redis when configured) for every process.

Two structures, both bounded and safe under concurrent writers (add/incr only):
- per-bucket call and error counters over the sliding window (ALERT_WINDOW_SECONDS);
- ring buffers of the last calls and the last failures (fixed slots, a shared sequence).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache

PREFIX = "ops:calls"
BUCKETS_PER_WINDOW = 30
RECENT_SLOTS = 200
FAILURE_SLOTS = 50
RING_TTL = 24 * 3600


@dataclass(frozen=True)
class WindowStats:
    """Calls and errors over the last `seconds`."""

    calls: int
    errors: int
    seconds: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def _bucket_seconds(window: int) -> int:
    return max(1, math.ceil(window / BUCKETS_PER_WINDOW))


def _bump(key: str, timeout: int | None) -> int:
    """Add one to a counter, creating it with `timeout` if needed; return the new value."""
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _push(ring: str, slots: int, item: dict[str, Any]) -> None:
    seq = _bump(f"{PREFIX}:{ring}:seq", None)
    cache.set(f"{PREFIX}:{ring}:{seq % slots}", {**item, "seq": seq}, timeout=RING_TTL)


def _read(ring: str, slots: int) -> list[dict[str, Any]]:
    found = cache.get_many([f"{PREFIX}:{ring}:{slot}" for slot in range(slots)])
    return sorted(found.values(), key=lambda item: item["seq"], reverse=True)


def record(call: dict[str, Any], *, error: bool, now: float | None = None) -> None:
    """Count a call in the window and keep it (and a failure) in the rings."""
    now = time.time() if now is None else now
    window = settings.ALERT_WINDOW_SECONDS
    size = _bucket_seconds(window)
    index = int(now // size)
    timeout = window + 2 * size
    counters = [(f"{PREFIX}:n:{size}:{index}", timeout)]
    rings = [("recent", RECENT_SLOTS)]
    if error:
        counters.append((f"{PREFIX}:e:{size}:{index}", timeout))
        rings.append(("failures", FAILURE_SLOTS))
    item = {**call, "time": now}
    redis_cache = _redis_cache()
    if redis_cache is not None:
        _record_in_redis(redis_cache, counters, rings, item)
        return
    for key, key_timeout in counters:
        _bump(key, key_timeout)
    for ring, slots in rings:
        _push(ring, slots, item)


def _redis_cache() -> RedisCache | None:
    found = caches[DEFAULT_CACHE_ALIAS]
    return found if isinstance(found, RedisCache) else None


def _record_in_redis(
    redis_cache: RedisCache,
    counters: list[tuple[str, int | None]],
    rings: list[tuple[str, int]],
    item: dict[str, Any],
) -> None:
    """`record` in two round trips to Redis instead of 7 (14 for a failure).

    Django's cache API makes a round trip per operation, and its `incr` checks that the key
    exists first. The log record of every call runs in the ORM thread that settles the
    reply, before the final frame goes out. Here every counter, the rings' sequences
    included, is created and incremented in one MULTI/EXEC. Then each ring's slot is
    written, which needs its sequence number. The keys and the values are Django's, so
    `cache.get_many` reads them as before.
    """
    client = redis_cache._cache.get_client(write=True)
    key = redis_cache.make_and_validate_key
    counted = [*counters, *((f"{PREFIX}:{ring}:seq", None) for ring, _ in rings)]
    with client.pipeline(transaction=True) as pipe:
        for name, timeout in counted:
            pipe.set(key(name), 0, ex=timeout, nx=True)  # add(): only when missing
            pipe.incr(key(name))
        values = pipe.execute()[1::2]
    dump = redis_cache._cache._serializer.dumps
    with client.pipeline(transaction=False) as pipe:
        for (ring, slots), seq in zip(rings, values[len(counters) :], strict=True):
            pipe.set(key(f"{PREFIX}:{ring}:{seq % slots}"), dump({**item, "seq": seq}), ex=RING_TTL)
        pipe.execute()


def stats(now: float | None = None) -> WindowStats:
    """Calls and errors in the sliding window ending now (to the bucket)."""
    now = time.time() if now is None else now
    window = settings.ALERT_WINDOW_SECONDS
    size = _bucket_seconds(window)
    last = int(now // size)
    indexes = range(last - math.ceil(window / size) + 1, last + 1)
    calls = [f"{PREFIX}:n:{size}:{i}" for i in indexes]
    errors = [f"{PREFIX}:e:{size}:{i}" for i in indexes]
    found = cache.get_many(calls + errors)
    return WindowStats(
        calls=sum(found.get(key, 0) for key in calls),
        errors=sum(found.get(key, 0) for key in errors),
        seconds=window,
    )


def recent_calls(*, within: float | None = None, now: float | None = None) -> list[dict]:
    """The last calls, newest first; only those of the last `within` seconds if given."""
    calls = _read("recent", RECENT_SLOTS)
    if within is not None:
        since = (time.time() if now is None else now) - within
        calls = [call for call in calls if call["time"] >= since]
    return calls


def recent_failures(limit: int = FAILURE_SLOTS) -> list[dict]:
    """The last failed calls, newest first."""
    return _read("failures", FAILURE_SLOTS)[:limit]


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (p50: fraction 0.5) of values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
