"""The admin's Operations panel: staff only; streams, error rate, latency, breaker, failures."""

import re

import pytest
from django.core.cache import cache

from ops import metrics
from ops.calls import log_claude_call
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PANEL = "/admin/ops/operationspanel/"


def claude_call(*, duration_ms: float, ttft_ms: float | None, error_kind: str = "", **extra):
    log_claude_call(
        **{
            "request_id": "req_ok",
            "user_id": 1,
            "conversation_id": 1,
            "model": "claude-sonnet-4-6",
            "usage": {"input_tokens": 10, "output_tokens": 5},
            "cost": None,
            "ttft_ms": ttft_ms,
            "duration_ms": duration_ms,
            "stop_reason": "" if error_kind else "end_turn",
            "status": "failed" if error_kind else "complete",
            "error_kind": error_kind,
            "purpose": "chat",
        }
        | extra
    )


def metric(html: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}">([^<]*)<', html)
    assert match, name
    return match.group(1).strip()


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def test_panel_is_listed_on_the_admin_index_for_staff(staff_client):
    html = staff_client.get("/admin/").content.decode()
    assert "Operations" in html
    assert PANEL in html


def test_non_staff_cannot_open_the_panel(client):
    client.force_login(UserFactory())
    response = client.get(PANEL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_panel_shows_error_rate_latency_breaker_and_failures(staff_client):
    for n in range(1, 20):  # durations 100..1900 ms, first tokens 10..190 ms
        claude_call(duration_ms=n * 100, ttft_ms=n * 10)
    claude_call(
        duration_ms=2000, ttft_ms=None, error_kind="overloaded", request_id="req_overloaded_1"
    )
    cache.set("claude:breaker:state", "half_open")

    html = staff_client.get(PANEL).content.decode()

    assert metric(html, "error-rate") == "5%"
    assert "1 of 20 calls" in html
    assert metric(html, "duration-p50") == "1000 ms"
    assert metric(html, "duration-p95") == "1900"
    assert metric(html, "ttft-p50") == "100"
    assert metric(html, "ttft-p95") == "190"
    assert metric(html, "breaker") == "half_open"
    failures = html.split('id="ops-failures"')[1]
    assert "overloaded" in failures and "req_overloaded_1" in failures
    assert "req_ok" not in failures


def test_panel_counts_live_streams(staff_client):
    before = int(metric(staff_client.get(PANEL).content.decode(), "streams"))
    with metrics.track_stream(), metrics.track_stream():
        html = staff_client.get(PANEL).content.decode()
    assert int(metric(html, "streams")) == before + 2


def test_panel_refresh_returns_only_the_fragment(staff_client):
    response = staff_client.get(PANEL, headers={"hx-request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ops-panel"')
    assert "<html" not in html


def test_empty_panel_says_so(staff_client):
    html = staff_client.get(PANEL).content.decode()
    assert metric(html, "error-rate") == "\N{EN DASH}"
    assert "No failures recorded." in html
    assert metric(html, "breaker") == "closed"
