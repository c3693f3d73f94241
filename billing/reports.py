"""What the spend dashboard shows, aggregated in SQL from the rollups (never from ledger rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, Sum

from billing.models import (
    LATENCY_BUCKETS_MS,
    TOTAL_FIELDS,
    ConversationSpend,
    GlobalMonth,
    Grain,
    LatencyBucket,
    Reservation,
    SiteDaily,
    UserSpend,
    month_start,
    next_month,
)
from conversations.models import Conversation

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days from start to end, both included.

    `data_until` is the last day that can hold calls (today): a month the range covers from
    its first day to that day is read from the month rollup, not day by day.
    """

    start: dt.date
    end: dt.date
    data_until: dt.date | None = field(default=None, compare=False)

    @classmethod
    def month_of(cls, day: dt.date, *, data_until: dt.date | None = None) -> DateRange:
        first = month_start(day)
        return cls(first, next_month(first) - ONE_DAY, data_until)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + ONE_DAY * i for i in range((self.end - self.start).days + 1)]

    def parts(self) -> list[tuple[str, dt.date, dt.date]]:
        """(grain, first, last) pieces of rollup rows that cover the range exactly."""
        pieces = []
        month = month_start(self.start)
        while month <= self.end:
            last = next_month(month) - ONE_DAY
            low, high = max(month, self.start), min(last, self.end)
            if low == month and high >= min(last, self.data_until or last):
                pieces.append((Grain.MONTH, month, month))
            else:
                pieces.append((Grain.DAY, low, high))
            month = next_month(month)
        return pieces

    def periods(self) -> Q:
        """The filter selecting those rollup rows."""
        condition = Q()
        months = [low for grain, low, _ in self.parts() if grain == Grain.MONTH]
        for grain, low, high in self.parts():
            if grain == Grain.DAY:
                condition |= Q(grain=grain, period__range=(low, high))
        if months:
            condition |= Q(grain=Grain.MONTH, period__in=months)
        return condition

    def single_period(self) -> tuple[str, dt.date] | None:
        """The one rollup period (a month or a day) the range is, if it is one."""
        pieces = self.parts()
        if len(pieces) == 1 and pieces[0][1] == pieces[0][2]:
            return pieces[0][0], pieces[0][1]
        return None


@contextmanager
def roomy_aggregates() -> Iterator[None]:
    """Run the report's queries in one transaction whose GROUP BYs hash in memory.

    Postgres spills a hash aggregate to disk past work_mem (4 MB by default); the user and
    conversation tables of a long range need tens of MB.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def sums(*fields: str) -> dict[str, Sum]:
    return {name: Sum(name) for name in fields or TOTAL_FIELDS}


def with_derived(row: dict) -> dict:
    """Add the shares and token totals a table shows."""
    calls = row.get("calls") or 0
    row["prompt_tokens"] = sum(
        row.get(k) or 0
        for k in (
            "input_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "cache_read_tokens",
        )
    )
    row["error_rate"] = (row.get("errors") or 0) / calls if calls else 0.0
    row["cost"] = row.get("cost") or Decimal(0)
    row["cache_savings"] = row.get("cache_savings") or Decimal(0)
    return row


def totals(period: DateRange) -> dict:
    """Everything in the range, all users and models."""
    row = SiteDaily.objects.filter(day__range=(period.start, period.end)).aggregate(**sums())
    return with_derived({k: v or 0 for k, v in row.items()})


def spend_by_day(period: DateRange) -> list[dict]:
    """One row per day of the range (zeros on days without calls)."""
    rows = {
        row["day"]: row
        for row in SiteDaily.objects.filter(day__range=(period.start, period.end))
        .values("day")
        .annotate(**sums("calls", "errors", "cost", "cache_savings"))
        .order_by()
    }
    empty = {"calls": 0, "errors": 0, "cost": Decimal(0), "cache_savings": Decimal(0)}
    return [with_derived(rows.get(day) or {"day": day, **empty}) for day in period.days]


def spend_by(period: DateRange, dimension: str) -> list[dict]:
    """Totals per model or per purpose, dearest first."""
    rows = (
        SiteDaily.objects.filter(day__range=(period.start, period.end))
        .values(dimension)
        .annotate(**sums())
        .order_by("-cost", dimension)
    )
    return [with_derived(row) for row in rows]


def unpriced_models(by_model: list[dict]) -> list[dict]:
    return [row for row in by_model if row["unpriced_calls"]]


USER_SORTS = {
    "user": "username",
    "calls": "calls",
    "errors": "errors",
    "prompt": "prompt_tokens",
    "output": "output_tokens",
    "cost": "cost",
    "savings": "cache_savings",
    "unpriced": "unpriced_calls",
}


def spend_by_user(
    period: DateRange, *, search: str = "", sort: str = "-cost", names: bool = False
) -> QuerySet:
    """Per-user totals in the range as a values() queryset, filtered and sorted.

    Grouped by user id only; the names are joined when sorting by them or when `names`
    is set (the CSV), else add them to the page's rows with with_names().
    """
    rows = UserSpend.objects.filter(period.periods())
    if search:
        matching = get_user_model().objects.filter(
            Q(username__icontains=search) | Q(email__icontains=search)
        )
        rows = rows.filter(user__in=matching.values("pk"))
    field_name = USER_SORTS.get(sort.lstrip("-"), "cost")
    direction = "-" if sort.startswith("-") else ""
    keys: dict = {}
    if names or field_name == "username":
        keys = {"username": F("user__username"), "email": F("user__email")}
    return (
        rows.values("user_id", **keys)
        .annotate(**sums())
        .annotate(  # over the sums above, so a sort by prompt tokens happens in SQL
            prompt_tokens=F("input_tokens")
            + F("cache_write_5m_tokens")
            + F("cache_write_1h_tokens")
            + F("cache_read_tokens")
        )
        .order_by(f"{direction}{field_name}", "user_id")
    )


def with_names(rows: list[dict]) -> list[dict]:
    """Add username and email to a page of spend_by_user rows (one query)."""
    missing = [row["user_id"] for row in rows if "username" not in row]
    found = get_user_model().objects.in_bulk(missing) if missing else {}
    for row in rows:
        if "username" not in row:
            user = found.get(row["user_id"])
            row["username"] = user.username if user else f"(deleted user {row['user_id']})"
            row["email"] = user.email if user else ""
    return rows


CONVERSATION_TOTALS = ("calls", "errors", "output_tokens", "cost", "cache_savings")


def top_conversations(period: DateRange, *, limit: int = 10, user=None) -> list[dict]:
    """The dearest conversations in the range, with their titles and owners."""
    single = period.single_period()
    if single is not None:  # one row per conversation already: read the top of an index
        rows = ConversationSpend.objects.filter(grain=single[0], period=single[1])
        if user is not None:
            rows = rows.filter(user=user)
        top = list(
            rows.order_by("-cost", "conversation_id").values(
                "conversation_id", *CONVERSATION_TOTALS
            )[:limit]
        )
    else:
        rows = ConversationSpend.objects.filter(period.periods())
        if user is not None:
            rows = rows.filter(user=user)
        top = list(
            rows.values("conversation_id")
            .annotate(**sums(*CONVERSATION_TOTALS))
            .order_by("-cost", "conversation_id")[:limit]
        )
    found = Conversation.objects.select_related("user").in_bulk([r["conversation_id"] for r in top])
    for row in top:
        row["conversation"] = found.get(row["conversation_id"])
    return [with_derived(row) for row in top]


def quantile(counts: dict[int, int], q: float) -> float | None:
    """Estimate a quantile from histogram counts by bucket bound (linear within a bucket)."""
    total = sum(counts.values())
    if not total:
        return None
    rank = q * total
    seen, lower = 0, 0
    for bound in LATENCY_BUCKETS_MS:
        count = counts.get(bound, 0)
        if count and seen + count >= rank:
            if bound == LATENCY_BUCKETS_MS[-1]:
                return float(lower)  # the open-ended bucket: at least this
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        lower = bound
    return float(lower)


def latency_by_day(period: DateRange) -> list[dict]:
    """Time to first token and duration, p50 and p95 in ms, per day."""
    histograms: dict[tuple[dt.date, str], dict[int, int]] = {}
    for row in LatencyBucket.objects.filter(day__range=(period.start, period.end)).values_list(
        "day", "metric", "le_ms", "calls"
    ):
        histograms.setdefault((row[0], row[1]), {})[row[2]] = row[3]
    result = []
    for day in period.days:
        entry: dict = {"day": day}
        for metric in LatencyBucket.Metric.values:
            counts = histograms.get((day, metric), {})
            entry[f"{metric}_p50"] = quantile(counts, 0.5)
            entry[f"{metric}_p95"] = quantile(counts, 0.95)
        result.append(entry)
    return result


def latency_overall(period: DateRange) -> dict:
    """p50 and p95 over the whole range."""
    counts: dict[str, dict[int, int]] = {m: {} for m in LatencyBucket.Metric.values}
    for metric, bound, calls in (
        LatencyBucket.objects.filter(day__range=(period.start, period.end))
        .values("metric", "le_ms")
        .annotate(n=Sum("calls"))
        .values_list("metric", "le_ms", "n")
        .order_by()
    ):
        counts[metric][bound] = calls
    return {
        f"{metric}_{name}": quantile(counts[metric], q)
        for metric in counts
        for name, q in (("p50", 0.5), ("p95", 0.95))
    }


@dataclass
class MonthStatus:
    month: dt.date
    spent: Decimal
    reserved: Decimal
    cap: Decimal | None
    in_flight: int

    @property
    def share(self) -> int | None:
        if not self.cap:
            return None
        return int((self.spent + self.reserved) * 100 / self.cap)


def month_status(today: dt.date, cap: Decimal | None) -> MonthStatus:
    """This month's spend and holds against the global cap."""
    month = month_start(today)
    row = GlobalMonth.objects.filter(month=month).first()
    return MonthStatus(
        month=month,
        spent=row.spent if row else Decimal(0),
        reserved=row.reserved if row else Decimal(0),
        cap=cap,
        in_flight=Reservation.objects.filter(month=month).count(),
    )
