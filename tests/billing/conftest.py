"""Billing tests: the seeded list prices (a transactional test elsewhere flushes them)."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.apps import apps

from billing.budgets import reserve, settle

NOW = dt.datetime(2026, 11, 15, 12, tzinfo=dt.UTC)
SONNET = "claude-sonnet-4-6"
OUTPUT_PRICE = Decimal("0.000015")  # Sonnet output: $15 per million tokens


def seed_list_prices() -> None:
    """The migration's own seed (get_or_create), so the prices live in one place."""
    importlib.import_module("billing.migrations.0002_seed_prices").seed(apps, None)


@pytest.fixture(autouse=True)
def list_prices(request):
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    seed_list_prices()


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
