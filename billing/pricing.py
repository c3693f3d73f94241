"""What a call to Claude costs, from the dated price table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import Price, utc_day
from billing.tokens import Tokens


def price_for(model: str, *, at: dt.datetime | dt.date | None = None) -> Price | None:
    """The price in force for this model at that time (default now), or None if unpriced."""
    if at is None:
        at = timezone.now()
    day = utc_day(at) if isinstance(at, dt.datetime) else at
    return Price.objects.in_force(model, day)


def cost_of(
    *,
    model: str,
    usage: Mapping[str, Any] | Tokens,
    batch: bool = False,
    at: dt.datetime | dt.date | None = None,
) -> Decimal | None:
    """The cost in USD, exact to the micro-dollar, of a call's usage; None when unpriced."""
    price = price_for(model, at=at)
    if price is None:
        return None
    tokens = usage if isinstance(usage, Tokens) else Tokens.from_usage(usage)
    return price.cost(tokens, batch=batch)


acost_of = sync_to_async(cost_of)
