"""A user's own spend: this month against their budget, by model and by conversation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from billing.budgets import resets_text, used_up_message, user_budget, warning_message
from billing.models import Grain, UserMonth, UserSpend, month_start, next_month, utc_day
from billing.reports import DateRange, sums, top_conversations, with_derived
from chatsite.db import orm


@dataclass
class UsageSummary:
    month: dt.date
    resets_on: dt.date
    budget: Decimal | None  # None: unlimited
    spent: Decimal
    reserved: Decimal
    by_model: list[dict] = field(default_factory=list)
    by_conversation: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    unpriced_calls: int = 0

    @property
    def committed(self) -> Decimal:
        return self.spent + self.reserved

    @property
    def remaining(self) -> Decimal | None:
        if self.budget is None:
            return None
        return max(self.budget - self.committed, Decimal(0))

    @property
    def percent(self) -> int | None:
        if self.budget is None:
            return None
        return min(int(self.committed * 100 / self.budget), 100)

    @property
    def blocked(self) -> bool:
        return self.budget is not None and self.committed >= self.budget

    @property
    def message(self) -> str:
        """The block message at 100%, the warning from 80%, else ""."""
        if self.blocked:
            return used_up_message(self.budget, self.month)
        return warning_message(self.committed, self.budget, self.month)

    @property
    def resets(self) -> str:
        return resets_text(self.month)


def user_usage(user, *, at: dt.datetime | None = None, months: int = 6) -> UsageSummary:
    """This UTC month's spend, budget and remaining, by model and conversation, and history."""
    month = month_start(utc_day(at or timezone.now()))
    counter = UserMonth.objects.filter(user=user, month=month).first()
    mine = UserSpend.objects.filter(user=user, grain=Grain.MONTH)
    by_model = [
        with_derived(row)
        for row in mine.filter(period=month).values("model").annotate(**sums()).order_by("-cost")
    ]
    history = list(
        mine.filter(period__lte=month)
        .values("period")
        .annotate(**sums("calls", "cost"))
        .order_by("-period")[:months]
    )
    return UsageSummary(
        month=month,
        resets_on=next_month(month),
        budget=user_budget(user),
        spent=counter.spent if counter else Decimal(0),
        reserved=counter.reserved if counter else Decimal(0),
        by_model=by_model,
        by_conversation=top_conversations(
            DateRange.month_of(month, data_until=month), limit=50, user=user
        ),
        history=history,
        unpriced_calls=sum(row["unpriced_calls"] for row in by_model),
    )


async def auser_usage(user, *, at: dt.datetime | None = None) -> UsageSummary:
    """Async user_usage()."""
    return await orm(user_usage)(user, at=at)
