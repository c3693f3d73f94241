"""/metrics: what the public recording functions change in the exposition, and who may read it."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from ops import metrics
from ops.calls import alog_claude_call, log_claude_call
from tests.factories import UserFactory
from tests.ops.conftest import sample, scrape

pytestmark = pytest.mark.django_db


def call(model: str, **overrides) -> dict:
    return {
        "request_id": "req_test",
        "user_id": 1,
        "conversation_id": 2,
        "model": model,
        "usage": {
            "input_tokens": 120,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 400,
            "output_tokens": 55,
        },
        "cost": Decimal("0.0123"),
        "ttft_ms": 350.0,
        "duration_ms": 2100.0,
        "stop_reason": "end_turn",
        "status": "complete",
        "error_kind": "",
        "purpose": "chat",
    } | overrides


def test_a_call_adds_its_tokens_cost_and_latencies(client, metrics_token, model):
    log_claude_call(**call(model))
    log_claude_call(**call(model, usage={"input_tokens": 10, "output_tokens": 5}))
    text = scrape(client)

    assert sample(text, "chatsite_claude_tokens_total", model=model, kind="input") == 130
    assert sample(text, "chatsite_claude_tokens_total", model=model, kind="cache_write") == 30
    assert sample(text, "chatsite_claude_tokens_total", model=model, kind="cache_read") == 400
    assert sample(text, "chatsite_claude_tokens_total", model=model, kind="output") == 60
    assert sample(text, "chatsite_claude_cost_usd_total", model=model) == pytest.approx(0.0246)
    assert sample(text, "chatsite_claude_ttft_seconds_count", model=model) == 2
    assert sample(text, "chatsite_claude_ttft_seconds_sum", model=model) == pytest.approx(0.7)
    assert sample(text, "chatsite_claude_ttft_seconds_bucket", model=model, le="0.25") == 0
    assert sample(text, "chatsite_claude_ttft_seconds_bucket", model=model, le="0.5") == 2
    assert sample(text, "chatsite_claude_duration_seconds_count", model=model) == 2
    assert sample(text, "chatsite_claude_duration_seconds_sum", model=model) == pytest.approx(4.2)
    assert (
        sample(text, "chatsite_claude_calls_total", model=model, purpose="chat", status="complete")
        == 2
    )


def test_a_failed_call_counts_as_an_error_of_its_kind(client, metrics_token, model):
    before = sample(scrape(client), "chatsite_claude_errors_total", kind="overloaded")
    log_claude_call(
        **call(model, usage={}, cost=None, ttft_ms=None, status="failed", error_kind="overloaded")
    )
    text = scrape(client)

    assert sample(text, "chatsite_claude_errors_total", kind="overloaded") == before + 1
    assert sample(text, "chatsite_claude_calls_total", model=model, status="failed") == 1
    assert sample(text, "chatsite_claude_ttft_seconds_count", model=model) == 0
    assert sample(text, "chatsite_claude_duration_seconds_count", model=model) == 1
    assert sample(text, "chatsite_claude_cost_usd_total", model=model) == 0


async def test_the_async_variant_records_the_same(async_client, settings, model):
    settings.METRICS_TOKEN = "t0ken"
    await alog_claude_call(**call(model))
    response = await async_client.get("/metrics", headers={"authorization": "Bearer t0ken"})
    text = response.content.decode()
    assert sample(text, "chatsite_claude_tokens_total", model=model, kind="output") == 55


def test_active_streams_gauge_follows_streams(client, metrics_token):
    start = sample(scrape(client), "chatsite_active_streams")
    metrics.stream_started()
    with metrics.track_stream():
        assert sample(scrape(client), "chatsite_active_streams") == start + 2
    assert sample(scrape(client), "chatsite_active_streams") == start + 1
    metrics.stream_finished()
    assert sample(scrape(client), "chatsite_active_streams") == start


def test_track_stream_ends_the_stream_when_the_block_fails(client, metrics_token):
    start = sample(scrape(client), "chatsite_active_streams")
    with pytest.raises(RuntimeError), metrics.track_stream():
        raise RuntimeError("stream broke")
    assert sample(scrape(client), "chatsite_active_streams") == start


def test_rate_limit_and_budget_refusals_are_counted_by_scope(client, metrics_token):
    text = scrape(client)
    limited = sample(text, "chatsite_rate_limit_rejections_total", scope="user")
    blocked = sample(text, "chatsite_budget_blocks_total", scope="global")
    metrics.record_rate_limited("user")
    metrics.record_rate_limited("user")
    metrics.record_budget_block("global")
    text = scrape(client)
    assert sample(text, "chatsite_rate_limit_rejections_total", scope="user") == limited + 2
    assert sample(text, "chatsite_budget_blocks_total", scope="global") == blocked + 1


def test_breaker_gauge_shows_one_state(client, metrics_token):
    metrics.set_breaker_state("half_open")
    text = scrape(client)
    assert sample(text, "chatsite_claude_breaker_state", state="half_open") == 1
    assert sample(text, "chatsite_claude_breaker_state", state="open") == 0
    assert sample(text, "chatsite_claude_breaker_state", state="closed") == 0
    metrics.set_breaker_state("closed")
    with pytest.raises(ValueError):
        metrics.set_breaker_state("ajar")


def test_scrape_reads_the_shared_breaker_state_from_the_cache(client, metrics_token):
    metrics.set_breaker_state("closed")
    cache.set("claude:breaker:state", "open")  # another process opened it
    text = scrape(client)
    assert sample(text, "chatsite_claude_breaker_state", state="open") == 1
    assert sample(text, "chatsite_claude_breaker_state", state="closed") == 0
    metrics.set_breaker_state("closed")


def test_metrics_without_credentials_are_refused(client, metrics_token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"chatsite_" not in response.content


def test_metrics_with_a_wrong_token_are_refused(client, metrics_token):
    response = client.get("/metrics", headers={"authorization": "Bearer not-the-token"})
    assert response.status_code == 401


def test_metrics_with_the_token_are_served(client, metrics_token):
    response = client.get("/metrics", headers={"authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"chatsite_active_streams" in response.content


def test_no_token_configured_means_no_token_accepted(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"authorization": "Bearer "})
    assert response.status_code == 401


def test_staff_session_may_read_metrics(client, metrics_token):
    client.force_login(UserFactory(is_staff=True))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"chatsite_claude_breaker_state" in response.content


def test_other_signed_in_users_may_not(client, metrics_token):
    client.force_login(UserFactory())
    assert client.get("/metrics").status_code == 401
