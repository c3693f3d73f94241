"""The error-rate alert: one mail and one log event per incident, re-armed by recovery."""

import logging

import pytest

from ops.calls import log_claude_call


@pytest.fixture
def alert_settings(settings):
    settings.ADMINS = ["ops@example.com"]
    settings.ALERT_ERROR_RATE = 0.5
    settings.ALERT_WINDOW_SECONDS = 300
    settings.ALERT_MIN_CALLS = 10
    return settings


@pytest.fixture
def events(caplog):
    caplog.set_level(logging.INFO, logger="ops")
    return caplog


def alert_events(caplog, name: str = "alert.error_rate") -> list[dict]:
    return [
        r.msg | {"log_level": r.levelname.lower()}
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg.get("event") == name
    ]


def claude_call(*, failed: bool, request_id: str = "req_x") -> None:
    log_claude_call(
        request_id=request_id,
        user_id=7,
        conversation_id=9,
        model="claude-sonnet-4-6",
        usage={} if failed else {"input_tokens": 10, "output_tokens": 3},
        cost=None,
        ttft_ms=None if failed else 200.0,
        duration_ms=900.0,
        stop_reason="" if failed else "end_turn",
        status="failed" if failed else "complete",
        error_kind="overloaded" if failed else "",
        purpose="chat",
    )


def test_alert_fires_once_per_incident_not_per_error(alert_settings, mailoutbox, events):
    for n in range(9):
        claude_call(failed=True, request_id=f"req_{n}")
    assert mailoutbox == [], "fewer calls than ALERT_MIN_CALLS: no alert yet"

    claude_call(failed=True, request_id="req_9")
    for _ in range(15):
        claude_call(failed=True)

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["ops@example.com"]
    assert "Claude error rate 100%" in mail.subject
    assert "10 of the last 10 calls" in mail.body
    assert "overloaded claude-sonnet-4-6 req_9" in mail.body
    [event] = alert_events(events)
    assert event["log_level"] == "error"
    assert event["calls"] == 10 and event["errors"] == 10 and event["error_rate"] == 1.0


def test_alert_needs_the_threshold_not_just_errors(alert_settings, mailoutbox):
    for n in range(30):
        claude_call(failed=n % 3 == 0)  # a third fail: below 50%
    assert mailoutbox == []


def test_recovery_rearms_the_alert_for_the_next_incident(alert_settings, mailoutbox, events):
    for _ in range(10):
        claude_call(failed=True)
    assert len(mailoutbox) == 1

    for _ in range(11):  # 10 errors of 21 calls: below the threshold again
        claude_call(failed=False)
    [resolved] = alert_events(events, "alert.error_rate_resolved")
    assert resolved["calls"] == 21 and resolved["errors"] == 10
    assert len(mailoutbox) == 1

    for _ in range(2):  # 12 of 23: over it again, a new incident
        claude_call(failed=True)
    assert len(mailoutbox) == 2
    assert len(alert_events(events)) == 2


def test_zero_threshold_turns_the_alert_off(alert_settings, mailoutbox):
    alert_settings.ALERT_ERROR_RATE = 0
    for _ in range(20):
        claude_call(failed=True)
    assert mailoutbox == []


def test_alert_is_logged_even_when_mail_fails(alert_settings, events, settings):
    settings.MAILERS = {  # a real SMTP backend, to a port where nothing listens
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 1, "timeout": 5},
        }
    }
    for _ in range(10):
        claude_call(failed=True)
    assert len(alert_events(events)) == 1
    [failed] = alert_events(events, "alert.mail_failed")
    assert failed["error"] in {"ConnectionRefusedError", "OSError", "SMTPConnectError"}


def test_alert_log_line_reaches_the_configured_handler(alert_settings, mailoutbox, caplog):
    caplog.set_level(logging.INFO, logger="ops.alerts")
    for _ in range(10):
        claude_call(failed=True)
    assert [r.levelname for r in caplog.records if r.name == "ops.alerts"] == ["ERROR"]


def test_a_call_is_still_counted_when_the_cache_is_down(alert_settings, events, client):
    from tests.ops.conftest import METRICS_TOKEN, sample, scrape

    alert_settings.METRICS_TOKEN = METRICS_TOKEN
    before = sample(scrape(client), "chatsite_claude_errors_total", kind="overloaded")
    working = alert_settings.CACHES
    alert_settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    try:
        claude_call(failed=True)  # must not raise: the reply matters more than the window
        text = scrape(client)
    finally:
        alert_settings.CACHES = working
    [warning] = alert_events(events, "ops.window_unavailable")
    assert warning["error"] == "ConnectionError"
    assert sample(text, "chatsite_claude_errors_total", kind="overloaded") == before + 1
