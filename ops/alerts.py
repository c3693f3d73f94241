"""The error-rate alert: mail the admins once per incident, re-arm after recovery."""

from __future__ import annotations

import time

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins

from ops import window
from ops.metrics import ALERTS

logger = structlog.get_logger("ops.alerts")

INCIDENT_KEY = "ops:alert:error_rate"


def current_incident() -> dict | None:
    """The open error-rate incident (since, error_rate at start), if there is one."""
    return cache.get(INCIDENT_KEY)


def check_error_rate(*, after_error: bool, now: float | None = None) -> bool:
    """Fire the alert when the window's error rate reaches the threshold; True if it fired.

    Only an error can start an incident, and only while one is open can a success end it,
    so a healthy app reads one cache key per call.
    """
    threshold = settings.ALERT_ERROR_RATE
    if threshold <= 0:
        return False
    if not after_error and current_incident() is None:
        return False
    stats = window.stats(now)
    rate = stats.error_rate
    if rate is None:
        return False
    if rate >= threshold and stats.calls >= settings.ALERT_MIN_CALLS:
        incident = {"since": time.time() if now is None else now, "error_rate": rate}
        # add() is atomic across processes: exactly one caller opens the incident.
        if cache.add(INCIDENT_KEY, incident, timeout=None):
            _notify(stats)
            return True
        return False
    if rate < threshold:
        incident = current_incident()
        if incident is not None and cache.delete(INCIDENT_KEY):
            logger.info(
                "alert.error_rate_resolved",
                error_rate=round(rate, 4),
                calls=stats.calls,
                errors=stats.errors,
                window_seconds=stats.seconds,
                incident_seconds=round((now or time.time()) - incident["since"]),
            )
    return False


def _notify(stats: window.WindowStats) -> None:
    rate = stats.error_rate or 0.0
    ALERTS.labels(name="error_rate").inc()
    logger.error(
        "alert.error_rate",
        error_rate=round(rate, 4),
        threshold=settings.ALERT_ERROR_RATE,
        calls=stats.calls,
        errors=stats.errors,
        window_seconds=stats.seconds,
    )
    failures = window.recent_failures(limit=10)
    lines = [
        f"{stats.errors} of the last {stats.calls} calls to Claude failed ({rate:.0%}) in the "
        f"last {stats.seconds} seconds; the alert threshold is "
        f"{settings.ALERT_ERROR_RATE:.0%}.",
        "",
        "This mail comes once per incident: the next one only after the error rate has dropped "
        "below the threshold and risen again. The Operations panel in the admin shows the "
        "live picture.",
        "",
        "Recent failures (kind, model, request id):",
        *(
            f"- {f.get('error_kind')} {f.get('model')} {f.get('request_id') or '-'}"
            for f in failures
        ),
    ]
    try:
        mail_admins(f"Claude error rate {rate:.0%}", "\n".join(lines))
    except Exception as exc:  # the log event above is the alert of last resort
        logger.error("alert.mail_failed", error=type(exc).__name__)
