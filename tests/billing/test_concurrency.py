"""Fifty requests at once near the limit: real Postgres, one connection per thread."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from billing.budgets import BudgetExceeded, reserve, settle
from billing.models import GlobalMonth, LedgerEntry, UserMonth
from tests.billing.conftest import NOW, SONNET, spend
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = 50
WORST_CASE = Decimal("0.018")  # 1,000 prompt tokens x $3/M + 1,000 output tokens x $15/M


def race(users) -> list:
    """Reserve once per user entry, all threads released at the same instant."""
    start = threading.Barrier(len(users))

    def attempt(person):
        try:
            start.wait()
            return reserve(user=person, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
        except BudgetExceeded:
            return None
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        return list(pool.map(attempt, users))


def settle_at_worst_case(reservations) -> None:
    for reservation in reservations:
        settle(
            reservation,
            usage={"input_tokens": 1_000, "output_tokens": 1_000},
            model=SONNET,
            status="complete",
        )


def test_fifty_concurrent_reservations_from_one_user_near_the_limit_never_overspend(settings):
    person = UserFactory()
    spend(person, "0.90")
    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)  # $0.10 left: room for 5 calls of $0.018

    results = race([person] * CALLS)

    granted = [r for r in results if r is not None]
    assert len(granted) == 5
    counter = UserMonth.objects.get(user=person)
    assert counter.reserved == 5 * WORST_CASE
    assert counter.spent + counter.reserved <= Decimal(1)

    settle_at_worst_case(granted)
    counter.refresh_from_db()
    assert (counter.spent, counter.reserved) == (Decimal("0.990"), Decimal(0))
    assert LedgerEntry.objects.filter(user=person).count() == 6


def test_fifty_users_at_once_never_pass_the_global_cap(settings):
    people = UserFactory.create_batch(CALLS)
    settings.BUDGET_GLOBAL_MONTHLY_USD = Decimal("0.20")  # room for 11 calls of $0.018

    granted = [r for r in race(people) if r is not None]

    assert len(granted) == 11
    settle_at_worst_case(granted)
    site = GlobalMonth.objects.get()
    assert site.spent == 11 * WORST_CASE <= Decimal("0.20")
    assert site.reserved == 0
