"""The ops window of recent calls: the same counts and rings in memory and in Redis, and
with Redis two round trips per recorded call."""

import os

import pytest
import redis
from django.core.cache import cache

from ops import window

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/11"
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
NOW = 1_800_000_000.0


@pytest.fixture(params=["memory", "redis"])
def backend(request, settings):
    settings.CACHES = LOCMEM if request.param == "memory" else REDIS
    cache.clear()
    yield request.param
    cache.clear()


@pytest.fixture
def in_redis(settings):
    settings.CACHES = REDIS
    cache.clear()
    yield
    cache.clear()


def call(n: int, *, failed: bool = False) -> dict:
    return {
        "request_id": f"req_{n}",
        "model": "claude-sonnet-4-6",
        "purpose": "chat",
        "status": "failed" if failed else "complete",
        "error_kind": "overloaded" if failed else "",
        "ttft_ms": 300 + n,
        "duration_ms": 2000,
    }


def record_calls(count: int, *, failing: set[int] = frozenset()) -> None:
    for n in range(count):
        window.record(call(n, failed=n in failing), error=n in failing, now=NOW + n)


def test_counts_and_rings_are_the_same_in_memory_and_in_redis(backend):
    record_calls(5, failing={1, 3})

    stats = window.stats(now=NOW + 5)
    assert (stats.calls, stats.errors) == (5, 2)
    recent = window.recent_calls(now=NOW + 5)
    assert [c["request_id"] for c in recent] == ["req_4", "req_3", "req_2", "req_1", "req_0"]
    assert [c["seq"] for c in recent] == [5, 4, 3, 2, 1]
    assert recent[0]["ttft_ms"] == 304 and recent[0]["time"] == NOW + 4
    assert [c["request_id"] for c in window.recent_failures()] == ["req_3", "req_1"]
    # The window slides: calls older than ALERT_WINDOW_SECONDS no longer count.
    assert window.stats(now=NOW + 5 + 2 * 300).calls == 0


def test_the_rings_keep_only_their_slots(backend):
    record_calls(window.RECENT_SLOTS + 7)

    recent = window.recent_calls()
    assert len(recent) == window.RECENT_SLOTS
    assert recent[0]["seq"] == window.RECENT_SLOTS + 7  # the oldest were overwritten


def test_counters_expire_with_the_window_in_redis(settings, in_redis):
    record_calls(1, failing={0})

    client = redis.Redis.from_url(REDIS_URL)
    size = window._bucket_seconds(settings.ALERT_WINDOW_SECONDS)
    ttls = {
        kind: client.ttl(
            cache.make_and_validate_key(f"{window.PREFIX}:{kind}:{size}:{int(NOW // size)}")
        )
        for kind in ("n", "e")
    }
    assert all(0 < ttl <= settings.ALERT_WINDOW_SECONDS + 2 * size for ttl in ttls.values())
    assert client.ttl(cache.make_and_validate_key(f"{window.PREFIX}:recent:seq")) == -1  # kept


def test_a_call_is_recorded_in_two_round_trips_to_redis(in_redis, monkeypatch):
    trips = []
    pipeline_execute = redis.client.Pipeline.execute
    single = redis.Redis.execute_command

    def counted_pipeline(self, *args, **kwargs):
        trips.append("pipeline")
        return pipeline_execute(self, *args, **kwargs)

    def counted_single(self, *args, **kwargs):
        trips.append(args[0])
        return single(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counted_pipeline)
    monkeypatch.setattr(redis.Redis, "execute_command", counted_single)
    window.record(call(1, failed=True), error=True, now=NOW)
    monkeypatch.undo()

    assert trips == ["pipeline", "pipeline"]  # Django's cache API: 14 for a failure
    assert window.stats(now=NOW).errors == 1
    assert [c["request_id"] for c in window.recent_failures()] == ["req_1"]
