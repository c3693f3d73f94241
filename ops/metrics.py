"""Prometheus metrics: what the app records, and the exposition /metrics serves.

With PROMETHEUS_MULTIPROC_DIR set (before this module is imported), prometheus-client's
multiprocess mode writes every process's values to files in that directory and /metrics
merges them: any process answers for all processes on the host that share the directory.
Without it each process has its own registry and must be scraped on its own.
"""

from __future__ import annotations

import atexit
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
BREAKER_STATES = ("closed", "open", "half_open")
TOKEN_KINDS = {  # usage field of the Messages API -> metric label
    "input_tokens": "input",
    "cache_creation_input_tokens": "cache_write",
    "cache_read_input_tokens": "cache_read",
    "output_tokens": "output",
}
_PID_FILE = re.compile(r"_(\d+)\.db$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clean_multiprocess_dir(path: str) -> list[str]:
    """At a process's start: wipe the directory unless another process writing there lives.

    While others run, the counters of every process (dead ones too) must stay, or the merged
    counters would go backwards; only live gauges (active streams) of processes that are
    gone are removed. Return the names of the files removed.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    files = [
        (file, int(match.group(1)))
        for file in directory.glob("*.db")
        if (match := _PID_FILE.search(file.name))
    ]
    others_alive = {pid for _, pid in files if pid != me and _pid_alive(pid)}
    removed = []
    for file, pid in files:
        stale_live_gauge = file.name.startswith("gauge_live") and pid not in others_alive
        if not others_alive or stale_live_gauge:
            file.unlink(missing_ok=True)
            removed.append(file.name)
    return removed


if MULTIPROC_DIR:
    clean_multiprocess_dir(MULTIPROC_DIR)
    # Live gauges (active streams) of an exiting process must stop counting.
    atexit.register(multiprocess.mark_process_dead, os.getpid(), MULTIPROC_DIR)

disable_created_metrics()  # no *_created series: half the exposition, no use here

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)

CLAUDE_TTFT = Histogram(
    "chatsite_claude_ttft_seconds",
    "Time from sending a request to Claude to its first token.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
CLAUDE_DURATION = Histogram(
    "chatsite_claude_duration_seconds",
    "Duration of a call to Claude, from request to last token or failure.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
CLAUDE_CALLS = Counter(
    "chatsite_claude_calls", "Calls to Claude by outcome.", ["model", "purpose", "status"]
)
CLAUDE_TOKENS = Counter(
    "chatsite_claude_tokens",
    "Tokens of calls to Claude (kind: input, cache_write, cache_read, output).",
    ["model", "kind"],
)
CLAUDE_COST = Counter("chatsite_claude_cost_usd", "Cost of calls to Claude in USD.", ["model"])
CLAUDE_ERRORS = Counter("chatsite_claude_errors", "Failed calls to Claude by kind.", ["kind"])
BREAKER_STATE = Gauge(
    "chatsite_claude_breaker_state",
    "Circuit breaker state: 1 for the current state, 0 for the others.",
    ["state"],
    multiprocess_mode="mostrecent",
)
ACTIVE_STREAMS = Gauge(
    "chatsite_active_streams",
    "Replies streaming from Claude right now.",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "chatsite_rate_limit_rejections", "Messages refused by a rate limit.", ["scope"]
)
BUDGET_BLOCKS = Counter("chatsite_budget_blocks", "Messages refused by a budget.", ["scope"])
ALERTS = Counter("chatsite_alerts", "Alerts sent to the admins.", ["name"])


def set_breaker_state(state: str) -> None:
    """Show the circuit breaker's state: closed, open or half_open."""
    if state not in BREAKER_STATES:
        raise ValueError(f"unknown breaker state {state!r}")
    for name in BREAKER_STATES:
        BREAKER_STATE.labels(state=name).set(1 if name == state else 0)


def stream_started() -> None:
    """A reply started streaming from Claude."""
    ACTIVE_STREAMS.inc()


def stream_finished() -> None:
    """A reply stopped streaming (finished, failed or cancelled)."""
    ACTIVE_STREAMS.dec()


@contextmanager
def track_stream() -> Iterator[None]:
    """Count a streaming reply as active for the duration of the block."""
    stream_started()
    try:
        yield
    finally:
        stream_finished()


def record_rate_limited(scope: str) -> None:
    """A message was refused by a rate limit (scope: user, global, ...)."""
    RATE_LIMITED.labels(scope=scope).inc()


def record_budget_block(scope: str) -> None:
    """A message was refused because a budget is spent (scope: user, global, ...)."""
    BUDGET_BLOCKS.labels(scope=scope).inc()


def record_call(
    *,
    model: str,
    purpose: str,
    status: str,
    usage: dict[str, int],
    cost: Decimal | None,
    ttft_ms: float | None,
    duration_ms: float | None,
    error_kind: str,
) -> None:
    """Count one call to Claude in every metric it touches."""
    CLAUDE_CALLS.labels(model=model, purpose=purpose, status=status).inc()
    for field, kind in TOKEN_KINDS.items():
        count = usage.get(field) or 0
        if count > 0:
            CLAUDE_TOKENS.labels(model=model, kind=kind).inc(count)
    if cost:
        CLAUDE_COST.labels(model=model).inc(float(cost))
    if ttft_ms is not None:
        CLAUDE_TTFT.labels(model=model).observe(ttft_ms / 1000)
    if duration_ms is not None:
        CLAUDE_DURATION.labels(model=model).observe(duration_ms / 1000)
    if error_kind:
        CLAUDE_ERRORS.labels(kind=error_kind).inc()


def active_streams() -> int:
    """Streams active in this process, or on this host's processes in multiprocess mode."""
    if not MULTIPROC_DIR:
        return int(REGISTRY.get_sample_value("chatsite_active_streams") or 0)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    value = registry.get_sample_value("chatsite_active_streams")
    return int(value or 0)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


set_breaker_state("closed")
