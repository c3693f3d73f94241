"""What the admin's Operations panel shows, read from the cache and this host's metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings

from ops import alerts, health, metrics, window


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


def panel_context() -> dict:
    """Live streams, error rate, latency percentiles, breaker state and recent failures."""
    stats = window.stats()
    recent = window.recent_calls(within=stats.seconds)
    durations = [c["duration_ms"] for c in recent if c.get("duration_ms") is not None]
    ttfts = [c["ttft_ms"] for c in recent if c.get("ttft_ms") is not None]
    failures = [
        {**f, "at": datetime.fromtimestamp(f["time"], tz=UTC)}
        for f in window.recent_failures(limit=20)
    ]
    incident = alerts.current_incident()
    return {
        "streams": metrics.active_streams(),
        "streams_scope": "processes on this host" if metrics.MULTIPROC_DIR else "this process",
        "stats": stats,
        "error_rate_percent": None if stats.error_rate is None else round(stats.error_rate * 100),
        "latency": {
            "samples": len(durations),
            "duration_p50": _ms(window.percentile(durations, 0.5)),
            "duration_p95": _ms(window.percentile(durations, 0.95)),
            "ttft_p50": _ms(window.percentile(ttfts, 0.5)),
            "ttft_p95": _ms(window.percentile(ttfts, 0.95)),
        },
        "breaker": health.breaker_state() or "closed",
        "failures": failures,
        "incident_since": (datetime.fromtimestamp(incident["since"], tz=UTC) if incident else None),
        "alert_threshold_percent": round(settings.ALERT_ERROR_RATE * 100),
        "alert_min_calls": settings.ALERT_MIN_CALLS,
    }
