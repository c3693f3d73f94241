"""The server's check of a hold (`Hold.checked`, sent with a turn's COMMIT) refuses exactly
what `Hold.outcome` refuses: the user's limit (their override, 0 or empty for unlimited,
else the default) and the site's cap, at and either side of the boundary."""

import itertools
from decimal import Decimal

import pytest
from django.db import DataError, transaction

from billing import budgets
from billing.budgets import BudgetExceeded, Hold
from billing.models import GlobalMonth, UserBudget, UserMonth
from chatsite.db import run_together
from tests.billing.conftest import NOW, SONNET
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NO_ROW = object()  # the user has no override
MICRO = Decimal("0.000001")
LIMIT = Decimal("2.00")


def refused_by_python(hold: Hold) -> bool:
    with transaction.atomic():
        outcome = hold.outcome(run_together(hold.first))
        transaction.set_rollback(True)
    return isinstance(outcome, BudgetExceeded)


def refused_by_the_server(hold: Hold) -> bool:
    try:
        with transaction.atomic():
            run_together([*hold.checked, *hold.last])
            transaction.set_rollback(True)
    except DataError as exc:
        assert budgets.refused_on_server(exc)
        return True
    return False


def a_hold(user) -> Hold:
    return Hold(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)


@pytest.mark.parametrize(
    ("override", "default", "offset"),
    list(
        itertools.product([NO_ROW, None, Decimal(0), LIMIT], [None, Decimal(0), LIMIT], [-1, 0, 1])
    ),
)
def test_the_users_limit(settings, override, default, offset):
    settings.BUDGET_USER_MONTHLY_USD = default
    user = UserFactory()
    if override is not NO_ROW:
        UserBudget.objects.create(user=user, monthly_usd=override)
    hold = a_hold(user)
    # Already spent: the limit less this hold, and a micro-dollar either side.
    spent = LIMIT - hold.amount + offset * MICRO
    UserMonth.objects.create(user=user, month=hold.month, spent=spent)

    expected = refused_by_python(hold)
    assert refused_by_the_server(hold) == expected
    limited = override == LIMIT or (override is NO_ROW and default == LIMIT)
    assert expected == (limited and offset > 0)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_sites_cap(settings, offset):
    settings.BUDGET_GLOBAL_MONTHLY_USD = LIMIT
    hold = a_hold(UserFactory())
    GlobalMonth.objects.create(month=hold.month, spent=LIMIT - hold.amount + offset * MICRO)

    expected = refused_by_python(hold)
    assert refused_by_the_server(hold) == expected == (offset > 0)


def test_another_database_error_is_not_a_refusal():
    with pytest.raises(DataError) as failed, transaction.atomic():
        run_together([("SELECT 'x'::int", [])])
    assert not budgets.refused_on_server(failed.value)
