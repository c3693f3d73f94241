"""Billing test helpers (the list prices are re-seeded by tests/conftest.py)."""

import datetime as dt
from decimal import Decimal

from billing.budgets import reserve, settle

NOW = dt.datetime(2026, 11, 15, 12, tzinfo=dt.UTC)
SONNET = "claude-sonnet-4-6"
OUTPUT_PRICE = Decimal("0.000015")  # Sonnet output: $15 per million tokens


def spend(user, dollars: str, *, at: dt.datetime = NOW, conversation=None, **extra):
    """Make and settle a Sonnet call costing exactly `dollars` (all output tokens)."""
    tokens = int(Decimal(dollars) / OUTPUT_PRICE)
    assert tokens * OUTPUT_PRICE == Decimal(dollars), "pick a multiple of $0.000015"
    reservation = reserve(user=user, model=SONNET, prompt_tokens=0, max_tokens=tokens, at=at)
    return settle(
        reservation,
        usage={"output_tokens": tokens},
        model=SONNET,
        status="complete",
        conversation=conversation,
        **extra,
    )
