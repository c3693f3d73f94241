"""Keep the dashboard's rollups: added to as each call settles, rebuildable from the ledger."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from django.db import connection, models, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from billing.models import (
    LATENCY_BUCKETS_MS,
    ConversationSpend,
    GlobalMonth,
    Grain,
    LatencyBucket,
    LedgerEntry,
    SiteDaily,
    UserMonth,
    UserSpend,
    latency_bucket,
    month_start,
    utc_day,
)
from chatsite.db import Statement


def entry_totals(entry: LedgerEntry) -> dict[str, int | Decimal]:
    """What one ledger row adds to every rollup it belongs to."""
    return {
        "calls": 1,
        "errors": int(entry.is_error),
        "unpriced_calls": int(not entry.priced),
        "input_tokens": entry.input_tokens,
        "cache_write_5m_tokens": entry.cache_write_5m_tokens,
        "cache_write_1h_tokens": entry.cache_write_1h_tokens,
        "cache_read_tokens": entry.cache_read_tokens,
        "output_tokens": entry.output_tokens,
        "cost": entry.cost or Decimal(0),
        "cache_savings": entry.cache_savings or Decimal(0),
    }


def _add(model: type[models.Model], rows: list[dict], increments: dict) -> Statement:
    """Add the increments to each row with these keys, creating it first if needed.

    One `INSERT ... ON CONFLICT DO UPDATE` per table for all its rows (row-locked, no lost
    updates; the same SQL on Postgres and SQLite): a settled call touches seven rollup
    rows in four statements.
    """
    sql = _upsert_sql(model, tuple(rows[0]), tuple(increments), len(rows))
    params = [value for key in rows for value in (*key.values(), *increments.values())]
    return sql, params


@functools.cache
def _upsert_sql(
    model: type[models.Model], keys: tuple[str, ...], increments: tuple[str, ...], rows: int
) -> str:
    meta, quote = model._meta, connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(meta.get_field(name).column) for name in (*keys, *increments))
    conflict = ", ".join(quote(c) for c in _unique_key_columns(model))
    added = ", ".join(
        f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}"
        for c in (meta.get_field(name).column for name in increments)
    )
    values = ", ".join([f"({', '.join(['%s'] * (len(keys) + len(increments)))})"] * rows)
    return (
        f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET {added}"
    )


def _unique_key_columns(model: type[models.Model]) -> list[str]:
    (constraint,) = [c for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)]
    return [model._meta.get_field(name).column for name in constraint.fields]


def rollup_statements(entry: LedgerEntry) -> list[Statement]:
    """What adds a new ledger row to the rollups: run them in the transaction that writes it
    (chatsite.db.run_together sends them in one round trip)."""
    day = utc_day(entry.created_at)
    periods = ((Grain.DAY, day), (Grain.MONTH, month_start(day)))
    totals = entry_totals(entry)
    statements = []
    if entry.user_id is not None:
        user_rows = [
            {"grain": grain, "period": period, "user_id": entry.user_id, "model": entry.model}
            for grain, period in periods
        ]
        statements.append(_add(UserSpend, user_rows, totals))
    if entry.conversation_id is not None:
        conversation_rows = [
            {
                "grain": grain,
                "period": period,
                "conversation_id": entry.conversation_id,
                "user_id": entry.user_id,
            }
            for grain, period in periods
        ]
        statements.append(_add(ConversationSpend, conversation_rows, totals))
    site_row = {"day": day, "model": entry.model, "purpose": entry.purpose}
    statements.append(_add(SiteDaily, [site_row], totals))
    latencies = [
        {"day": day, "metric": metric, "le_ms": latency_bucket(value)}
        for metric, value in (
            (LatencyBucket.Metric.TTFT, entry.ttft_ms),
            (LatencyBucket.Metric.DURATION, entry.duration_ms),
        )
        if value is not None
    ]
    if latencies:
        statements.append(_add(LatencyBucket, latencies, {"calls": 1}))
    return statements


# --- Rebuilding from the ledger -----------------------------------------------------------


def ledger_sums() -> dict[str, models.Aggregate]:
    """The aggregates over ledger rows that give each Totals column."""
    zero = Value(Decimal(0), output_field=models.DecimalField(max_digits=18, decimal_places=6))
    return {
        "r_calls": Count("id"),
        "r_errors": Count("id", filter=~Q(error_kind="")),
        "r_unpriced_calls": Count("id", filter=Q(priced=False)),
        "r_input_tokens": Sum("input_tokens"),
        "r_cache_write_5m_tokens": Sum("cache_write_5m_tokens"),
        "r_cache_write_1h_tokens": Sum("cache_write_1h_tokens"),
        "r_cache_read_tokens": Sum("cache_read_tokens"),
        "r_output_tokens": Sum("output_tokens"),
        "r_cost": Coalesce(Sum("cost"), zero),
        "r_cache_savings": Coalesce(Sum("cache_savings"), zero),
    }


def _insert_select(model: type[models.Model], queryset: models.QuerySet) -> None:
    """INSERT INTO the model's table the rows of a values() queryset aliased r_<field>."""
    sql, params = queryset.query.sql_with_params()
    quote = connection.ops.quote_name
    aliases = [name for name in queryset.query.annotation_select if name.startswith("r_")]
    columns = [model._meta.get_field(alias.removeprefix("r_")).column for alias in aliases]
    table = quote(model._meta.db_table)
    target = ", ".join(quote(c) for c in columns)
    source = ", ".join(quote(a) for a in aliases)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({target}) SELECT {source} FROM ({sql}) s", params)  # noqa: S608


def _utc_day() -> TruncDate:
    return TruncDate("created_at", tzinfo=dt.UTC)


def _utc_month() -> TruncMonth:
    return TruncMonth("created_at", tzinfo=dt.UTC, output_field=models.DateField())


def _by_period(ledger: models.QuerySet, **keys: F) -> list[models.QuerySet]:
    """The ledger summed per day and per month (and per key), aliased for _insert_select."""
    return [
        ledger.values(r_grain=Value(grain.value), r_period=period, **keys).annotate(**ledger_sums())
        for grain, period in ((Grain.DAY, _utc_day()), (Grain.MONTH, _utc_month()))
    ]


@transaction.atomic
def rebuild_rollups(*, spent: bool = True) -> None:
    """Recompute every rollup from the ledger, in the database (and each month's spent)."""
    for model in (UserSpend, ConversationSpend, SiteDaily, LatencyBucket):
        model.objects.all().delete()
    ledger = LedgerEntry.objects.order_by()
    for qs in _by_period(
        ledger.filter(user__isnull=False), r_user=F("user_id"), r_model=F("model")
    ):
        _insert_select(UserSpend, qs)
    for qs in _by_period(
        ledger.filter(conversation__isnull=False),
        r_conversation=F("conversation_id"),
        r_user=F("user_id"),
    ):
        _insert_select(ConversationSpend, qs)
    _insert_select(
        SiteDaily,
        ledger.values(r_day=_utc_day(), r_model=F("model"), r_purpose=F("purpose")).annotate(
            **ledger_sums()
        ),
    )
    for metric, column in (
        (LatencyBucket.Metric.TTFT, "ttft_ms"),
        (LatencyBucket.Metric.DURATION, "duration_ms"),
    ):
        bucket = Case(
            *[When(**{f"{column}__lte": bound}, then=Value(bound)) for bound in LATENCY_BUCKETS_MS],
            default=Value(LATENCY_BUCKETS_MS[-1]),
        )
        _insert_select(
            LatencyBucket,
            ledger.filter(**{f"{column}__isnull": False})
            .values(r_day=_utc_day(), r_metric=Value(metric.value), r_le_ms=bucket)
            .annotate(r_calls=Count("id")),
        )
    if spent:
        _rebuild_spent(ledger)


def _rebuild_spent(ledger: models.QuerySet) -> None:
    """Set each month's spent to the sum of its ledger costs; reservations are left alone."""
    zero = Value(Decimal(0), output_field=models.DecimalField(max_digits=18, decimal_places=6))
    months = ledger.annotate(m=_utc_month())
    missing_users = (
        months.filter(user__isnull=False)
        .exclude(Exists(UserMonth.objects.filter(user_id=OuterRef("user_id"), month=OuterRef("m"))))
        .values(r_user=F("user_id"), r_month=F("m"), r_spent=zero, r_reserved=zero)
        .distinct()
    )
    _insert_select(UserMonth, missing_users)
    missing_months = (
        months.exclude(Exists(GlobalMonth.objects.filter(month=OuterRef("m"))))
        .values(r_month=F("m"), r_spent=zero, r_reserved=zero)
        .distinct()
    )
    _insert_select(GlobalMonth, missing_months)
    user_total = (
        months.filter(user_id=OuterRef("user_id"), m=OuterRef("month"))
        .values("user_id")
        .annotate(total=Sum("cost"))
        .values("total")
    )
    UserMonth.objects.update(spent=Coalesce(Subquery(user_total), zero))
    site_total = (
        months.filter(m=OuterRef("month")).values("m").annotate(total=Sum("cost")).values("total")
    )
    GlobalMonth.objects.update(spent=Coalesce(Subquery(site_total), zero))
