"""What a call to Claude costs, from the dated price table."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from billing.models import Price, utc_day
from billing.tokens import Tokens

# Every call is priced twice (its worst case, then its cost): prices are read from this
# process's memory, kept PRICE_CACHE_SECONDS. A price saved or deleted in this process is seen
# at once (signals); one saved in another process within PRICE_CACHE_SECONDS.
PRICE_CACHE_SECONDS = 60.0
_prices: dict[tuple[str, dt.date], tuple[float, Price | None]] = {}


def price_for(model: str, *, at: dt.datetime | dt.date | None = None) -> Price | None:
    """The price in force for this model at that time (default now), or None if unpriced."""
    if at is None:
        at = timezone.now()
    day = utc_day(at) if isinstance(at, dt.datetime) else at
    now = time.monotonic()
    found = _prices.get((model, day))
    if found is not None and found[0] > now:
        return found[1]
    price = Price.objects.in_force(model, day)
    if len(_prices) > 1000:
        _prices.clear()
    _prices[(model, day)] = (now + PRICE_CACHE_SECONDS, price)
    return price


@receiver([post_save, post_delete], sender=Price)
def forget_prices(**kwargs: Any) -> None:
    """Read prices from the database again (a price changed)."""
    _prices.clear()


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
