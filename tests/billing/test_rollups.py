"""The rollups the dashboard reads always equal a fresh aggregate of the ledger."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.budgets import reserve, settle
from billing.models import (
    TOTAL_FIELDS,
    ConversationSpend,
    GlobalMonth,
    LatencyBucket,
    LedgerEntry,
    SiteDaily,
    UserMonth,
    UserSpend,
    latency_bucket,
)
from billing.rollups import rebuild_rollups
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
MODELS = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-8", "claude-fable-5-2"]
tokens = st.one_of(st.just(0), st.integers(1, 200_000))
calls = st.lists(
    st.fixed_dictionaries(
        {
            "user": st.integers(0, 2),
            "conversation": st.one_of(st.none(), st.integers(0, 3)),
            "model": st.sampled_from(MODELS),
            "purpose": st.sampled_from(["chat", "title", "batch"]),
            "batch": st.booleans(),
            "minutes": st.integers(0, 45 * 24 * 60),  # across a month boundary
            "usage": st.fixed_dictionaries(
                {
                    "input_tokens": tokens,
                    "cache_read_input_tokens": tokens,
                    "output_tokens": tokens,
                    "ephemeral_5m_input_tokens": tokens,
                    "ephemeral_1h_input_tokens": tokens,
                }
            ),
            "status": st.sampled_from(["complete", "stopped", "interrupted", "failed"]),
            "error_kind": st.sampled_from(["", "", "overloaded", "timeout"]),
            "ttft_ms": st.one_of(st.none(), st.integers(0, 400_000)),
            "duration_ms": st.one_of(st.none(), st.integers(0, 400_000)),
        }
    ),
    min_size=1,
    max_size=25,
)


def fresh_aggregates() -> dict:
    """Aggregate the ledger from scratch, in Python, by every rollup's key."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    for e in LedgerEntry.objects.all():
        day = e.created_at.astimezone(dt.UTC).date()
        values = {
            "calls": 1,
            "errors": int(bool(e.error_kind)),
            "unpriced_calls": int(not e.priced),
            "input_tokens": e.input_tokens,
            "cache_write_5m_tokens": e.cache_write_5m_tokens,
            "cache_write_1h_tokens": e.cache_write_1h_tokens,
            "cache_read_tokens": e.cache_read_tokens,
            "output_tokens": e.output_tokens,
            "cost": e.cost or 0,
            "cache_savings": e.cache_savings or 0,
        }
        keys = [("site", day, e.model, e.purpose)]
        for grain, period in (("d", day), ("m", day.replace(day=1))):
            keys.append(("user", grain, period, e.user_id, e.model))
            if e.conversation_id:
                keys.append(("conversation", grain, period, e.conversation_id, e.user_id))
        for key in keys:
            for name, value in values.items():
                out[key[0]][key[1:]][name] += value
        for metric, ms in (("ttft", e.ttft_ms), ("duration", e.duration_ms)):
            if ms is not None:
                out["latency"][(day, metric, latency_bucket(ms))]["calls"] += 1
        out["user_month"][(e.user_id, day.replace(day=1))]["spent"] += e.cost or 0
        out["site_month"][(day.replace(day=1),)]["spent"] += e.cost or 0
    return {kind: {k: dict(v) for k, v in rows.items()} for kind, rows in out.items()}


def stored_rollups() -> dict:
    def rows(queryset, key, fields=TOTAL_FIELDS):
        return {
            tuple(row[k] for k in key): {f: row[f] for f in fields}
            for row in queryset.values(*key, *fields)
            if any(row[f] for f in fields) or "calls" not in fields
        }

    return {
        "site": rows(SiteDaily.objects, ["day", "model", "purpose"]),
        "user": rows(UserSpend.objects, ["grain", "period", "user_id", "model"]),
        "conversation": rows(
            ConversationSpend.objects, ["grain", "period", "conversation_id", "user_id"]
        ),
        "latency": rows(LatencyBucket.objects, ["day", "metric", "le_ms"], ["calls"]),
        "user_month": rows(UserMonth.objects.filter(spent__gt=0), ["user_id", "month"], ["spent"]),
        "site_month": rows(GlobalMonth.objects.filter(spent__gt=0), ["month"], ["spent"]),
    }


def normalised(aggregates: dict) -> dict:
    """Drop zero spend rows (a month with only unpriced calls has spent 0) for comparison."""
    result = {}
    for kind, rows in aggregates.items():
        if kind in ("user_month", "site_month"):
            rows = {k: v for k, v in rows.items() if v["spent"]}
        result[kind] = {k: {f: v[f] for f in v} for k, v in rows.items()}
    return result


@pytest.fixture
def people(db):
    users = UserFactory.create_batch(3)
    conversations = [ConversationFactory(user=users[i % 3]) for i in range(4)]
    return users, conversations


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=calls)
def test_rollups_equal_a_fresh_aggregate_of_the_ledger_after_random_calls(people, calls):
    users, conversations = people
    with transaction.atomic():
        for call in calls:
            user = users[call["user"]]
            conversation = None
            if call["conversation"] is not None:
                conversation = conversations[call["conversation"]]
                user = conversation.user
            usage = dict(call["usage"])
            usage["cache_creation_input_tokens"] = (
                usage["ephemeral_5m_input_tokens"] + usage["ephemeral_1h_input_tokens"]
            )
            reservation = reserve(
                user=user,
                model=call["model"],
                prompt_tokens=1_000,
                max_tokens=1_000,
                purpose=call["purpose"],
                batch=call["batch"],
                at=START + dt.timedelta(minutes=call["minutes"]),
            )
            settle(
                reservation,
                usage=usage,
                model=call["model"],
                status=call["status"],
                error_kind=call["error_kind"],
                ttft_ms=call["ttft_ms"],
                duration_ms=call["duration_ms"],
                conversation=conversation,
            )
        expected = normalised(fresh_aggregates())
        incremental = stored_rollups()
        assert incremental == {kind: expected.get(kind, {}) for kind in incremental}

        rebuild_rollups()
        assert stored_rollups() == incremental
        transaction.set_rollback(True)


def test_rebuild_makes_the_rollups_and_months_of_rows_written_straight_to_the_ledger(people):
    users, conversations = people
    when = dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            user=users[0],
            conversation=conversations[0],
            purpose="chat",
            model="claude-sonnet-4-6",
            output_tokens=1_000,
            cost=Decimal("0.015"),
            cache_savings=Decimal(0),
            priced=True,
            status="complete",
            created_at=when + dt.timedelta(hours=hours),  # Oct 31 and Nov 1, UTC
        )
        for hours in (0, 1)
    )

    rebuild_rollups()

    assert stored_rollups() == {
        kind: normalised(fresh_aggregates()).get(kind, {}) for kind in stored_rollups()
    }
    assert UserMonth.objects.get(user=users[0], month=dt.date(2026, 11, 1)).spent == Decimal(
        "0.015"
    )
    assert GlobalMonth.objects.get(month=dt.date(2026, 10, 1)).spent == Decimal("0.015")
