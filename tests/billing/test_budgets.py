"""Reserve before a call, settle after it: budgets, warnings, blocks and the ledger row."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.budgets import (
    BudgetExceeded,
    UnpricedModel,
    areserve,
    asettle,
    release,
    release_stale_reservations,
    reserve,
    settle,
)
from billing.models import GlobalMonth, LedgerEntry, Reservation, UserBudget, UserMonth
from billing.usage import user_usage
from tests.billing.conftest import NOW, SONNET, spend
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


def month_of(user, month=dt.date(2026, 11, 1)) -> UserMonth:
    return UserMonth.objects.get(user=user, month=month)


def test_reserve_holds_the_worst_case_and_settle_swaps_it_for_the_real_cost(user, settings):
    settings.BUDGET_USER_MONTHLY_USD = Decimal(10)
    conversation = ConversationFactory(user=user)
    reply = MessageFactory(conversation=conversation, role="assistant")

    reservation = reserve(
        user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, purpose="chat", at=NOW
    )
    # 1,000 x $3/M + 2,000 x $15/M = $0.033
    assert reservation.amount == Decimal("0.033")
    assert month_of(user).reserved == Decimal("0.033")
    assert GlobalMonth.objects.get(month=dt.date(2026, 11, 1)).reserved == Decimal("0.033")

    entry = settle(
        reservation,
        usage={"input_tokens": 900, "cache_read_input_tokens": 100, "output_tokens": 250},
        model=SONNET,
        status="complete",
        request_id="req_123",
        ttft_ms=412,
        duration_ms=2_950,
        conversation=conversation,
        message_id=reply.pk,
    )
    # 900 x 3 + 100 x 0.30 + 250 x 15 = 2,700 + 30 + 3,750 micro-dollars
    assert entry.cost == Decimal("0.006480")
    assert entry.cache_savings == Decimal("0.000270")  # 100 x (3 - 0.30)
    assert (entry.user, entry.conversation, entry.message) == (user, conversation, reply)
    assert (entry.purpose, entry.status, entry.request_id) == ("chat", "complete", "req_123")
    assert (entry.ttft_ms, entry.duration_ms, entry.created_at) == (412, 2_950, NOW)
    counter = month_of(user)
    assert (counter.spent, counter.reserved) == (Decimal("0.006480"), Decimal(0))
    site = GlobalMonth.objects.get(month=dt.date(2026, 11, 1))
    assert (site.spent, site.reserved) == (Decimal("0.006480"), Decimal(0))
    assert not Reservation.objects.exists()


def test_warning_from_80_percent_of_the_budget(user, settings):
    spend(user, "0.75")
    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)
    below = reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)
    assert below.warning == ""  # 0.75 + 0.033 = 78%
    release(below)

    spend(user, "0.03")
    above = reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)
    assert above.warning == (
        "You have used 81% of your $1.00 monthly budget (including replies in progress). "
        "It resets on 1 December 2026 (UTC)."
    )


def test_block_at_100_percent_says_when_the_budget_resets(user, settings):
    spend(user, "1.05")  # a call may settle above its estimate; the ledger keeps the truth
    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)

    with pytest.raises(BudgetExceeded) as refused:
        reserve(user=user, model=SONNET, prompt_tokens=10, max_tokens=10, at=NOW)

    assert str(refused.value) == (
        "You have used your $1.00 monthly budget. It resets on 1 December 2026 (UTC)."
    )
    assert refused.value.scope == "user"
    assert refused.value.resets_on == dt.date(2026, 12, 1)
    assert month_of(user).reserved == 0  # the refused hold was rolled back
    assert user_usage(user, at=NOW).blocked


def test_a_call_whose_worst_case_does_not_fit_is_refused_with_what_is_left(user, settings):
    spend(user, "0.99")
    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)
    with pytest.raises(BudgetExceeded) as refused:
        reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)
    assert str(refused.value) == (
        "This request could cost up to $0.033, more than the $0.01 left of your $1.00 "
        "monthly budget. It resets on 1 December 2026 (UTC)."
    )
    # A smaller call still fits: 100 x 3 + 500 x 15 = $0.0078.
    assert reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=500, at=NOW).amount == (
        Decimal("0.0078")
    )


def test_a_new_month_starts_from_zero(user, settings):
    spend(user, "1.05")
    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)
    december = dt.datetime(2026, 12, 1, 0, 0, 1, tzinfo=dt.UTC)
    reservation = reserve(user=user, model=SONNET, prompt_tokens=10, max_tokens=10, at=december)
    assert reservation.month == dt.date(2026, 12, 1)


def test_global_cap_refuses_everyone_once_reached(user, other_user, settings):
    settings.BUDGET_GLOBAL_MONTHLY_USD = Decimal("0.05")
    first = reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)
    with pytest.raises(BudgetExceeded) as refused:
        reserve(user=other_user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)
    assert refused.value.scope == "global"
    assert str(refused.value) == (
        "The site's monthly budget for Claude is used up. It resets on 1 December 2026 (UTC)."
    )
    assert not UserMonth.objects.filter(user=other_user, reserved__gt=0).exists()

    settle(first, usage={"output_tokens": 200}, model=SONNET, status="complete")  # $0.003
    assert reserve(user=other_user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)


def test_a_users_override_replaces_the_default(user, other_user, settings):
    settings.BUDGET_USER_MONTHLY_USD = Decimal(10)
    UserBudget.objects.create(user=user, monthly_usd=Decimal("0.02"))
    with pytest.raises(BudgetExceeded):
        reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)
    assert reserve(user=other_user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)

    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.01")
    UserBudget.objects.filter(user=user).update(monthly_usd=None)  # empty: unlimited
    assert reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)


def test_cache_writes_raise_the_worst_case_of_the_prompt(user):
    def amount(ttl):
        return reserve(
            user=user, model=SONNET, prompt_tokens=10_000, max_tokens=1_000, cache_ttl=ttl, at=NOW
        ).amount

    # 10,000 x 3 / 3.75 / 6 + 1,000 x 15 micro-dollars
    assert [amount(None), amount("5m"), amount("1h")] == [
        Decimal("0.045"),
        Decimal("0.0525"),
        Decimal("0.075"),
    ]


def test_batch_reservations_and_ledger_rows_are_half_price(user):
    reservation = reserve(
        user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, batch=True, at=NOW
    )
    assert reservation.amount == Decimal("0.0165")
    entry = settle(reservation, usage={"output_tokens": 1_000}, model=SONNET, status="complete")
    assert (entry.batch, entry.cost) == (True, Decimal("0.0075"))


def test_an_unpriced_model_is_refused_while_a_budget_applies(user, settings):
    settings.BUDGET_USER_MONTHLY_USD = Decimal(10)
    with pytest.raises(UnpricedModel) as refused:
        reserve(user=user, model="claude-fable-5-2", prompt_tokens=10, max_tokens=10, at=NOW)
    assert "claude-fable-5-2 has no price yet" in str(refused.value)
    assert isinstance(refused.value, BudgetExceeded)  # one exception for the caller to catch


def test_an_unpriced_call_without_budgets_is_recorded_unpriced_never_guessed(user):
    reservation = reserve(
        user=user, model="claude-fable-5-2", prompt_tokens=10, max_tokens=10, at=NOW
    )
    assert reservation.amount == 0
    entry = settle(
        reservation,
        usage={"input_tokens": 10, "output_tokens": 7},
        model="claude-fable-5-2",
        status="complete",
    )
    assert (entry.priced, entry.cost, entry.cache_savings) == (False, None, None)
    assert (entry.input_tokens, entry.output_tokens) == (10, 7)
    assert month_of(user).spent == 0
    assert user_usage(user, at=NOW).unpriced_calls == 1


def test_the_model_that_answered_is_the_one_priced(user):
    reservation = reserve(user=user, model=SONNET, prompt_tokens=10, max_tokens=10, at=NOW)
    entry = settle(
        reservation,
        usage={"output_tokens": 1_000},
        model="claude-haiku-4-5-20251001",
        status="complete",
    )
    assert (entry.model, entry.cost) == ("claude-haiku-4-5-20251001", Decimal("0.005"))


def test_failed_and_stopped_calls_are_recorded_with_the_usage_they_reported(user):
    failed = settle(
        reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100, at=NOW),
        usage={"input_tokens": 100, "output_tokens": 7},
        model=SONNET,
        status="interrupted",
        error_kind="overloaded",
    )
    assert (failed.status, failed.error_kind, failed.cost) == (
        "interrupted",
        "overloaded",
        Decimal("0.000405"),
    )
    nothing = settle(
        reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100, at=NOW),
        usage={},
        model=SONNET,
        status="failed",
        error_kind="timeout",
    )
    assert (nothing.output_tokens, nothing.cost, nothing.priced) == (0, Decimal(0), True)
    assert month_of(user).reserved == 0
    assert LedgerEntry.objects.filter(user=user).count() == 2


def test_settling_twice_releases_the_hold_once(user, other_user):
    reserve(user=other_user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
    reservation = reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
    usage = {"output_tokens": 100}
    settle(reservation, usage=usage, model=SONNET, status="complete")
    settle(reservation, usage=usage, model=SONNET, status="complete")
    assert month_of(user).reserved == 0
    assert GlobalMonth.objects.get().reserved == Decimal("0.018")  # other_user's hold stays
    assert month_of(user).spent == Decimal("0.003")  # both rows count: the ledger is the truth


def test_release_gives_the_hold_back_without_a_ledger_row(user):
    reservation = reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
    release(reservation)
    assert month_of(user).reserved == 0
    assert not LedgerEntry.objects.exists()


def test_holds_of_calls_that_never_settled_expire(user):
    stale = reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
    batch = reserve(
        user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, batch=True, at=NOW
    )
    assert release_stale_reservations(now=NOW + dt.timedelta(hours=2)) == 1
    assert month_of(user).reserved == batch.amount  # a batch may take a day
    assert not Reservation.objects.filter(pk=stale.pk).exists()
    # The late settle still writes its row; the hold is not released twice.
    settle(stale, usage={"output_tokens": 10}, model=SONNET, status="complete")
    assert month_of(user).reserved == batch.amount


def test_a_conversation_deleted_during_the_call_does_not_lose_the_ledger_row(user):
    conversation = ConversationFactory(user=user)
    reply = MessageFactory(conversation=conversation, role="assistant")
    reservation = reserve(user=user, model=SONNET, prompt_tokens=10, max_tokens=10, at=NOW)
    conversation.delete()
    entry = settle(
        reservation,
        usage={"output_tokens": 5},
        model=SONNET,
        status="stopped",
        conversation=conversation.pk,
        message_id=reply.pk,
    )
    entry.refresh_from_db()
    assert (entry.conversation_id, entry.message_id, entry.output_tokens) == (None, None, 5)


def test_deleting_a_user_keeps_their_ledger_numbers(user):
    entry = spend(user, "0.03")
    user.delete()
    entry.refresh_from_db()
    assert (entry.user_id, entry.cost) == (None, Decimal("0.03"))


@pytest.mark.django_db(transaction=True)
async def test_async_reserve_and_settle_for_the_chat_turn(settings):
    from asgiref.sync import sync_to_async
    from django.db import connections

    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)
    person = await sync_to_async(UserFactory)()
    reservation = await areserve(
        user=person, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW
    )
    entry = await asettle(
        reservation, usage={"output_tokens": 1_000}, model=SONNET, status="complete"
    )
    assert entry.cost == Decimal("0.015")
    counter = await UserMonth.objects.aget(user=person)
    assert (counter.spent, counter.reserved) == (Decimal("0.015"), 0)
    await sync_to_async(connections.close_all)()


def test_a_users_next_call_frees_their_own_stale_holds(user, settings):
    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.02")
    reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)  # $0.018
    with pytest.raises(BudgetExceeded):
        reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
    later = NOW + dt.timedelta(hours=2)  # its process died: the hold expired
    assert reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=later)
    assert UserMonth.objects.get(user=user).reserved == Decimal("0.018")


def test_anyones_expired_hold_is_freed_when_it_blocks_the_sites_cap(user, other_user, settings):
    settings.BUDGET_GLOBAL_MONTHLY_USD = Decimal("0.05")
    reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=NOW)  # $0.033
    later = NOW + dt.timedelta(hours=2)  # the first call's process died: its hold expired
    assert reserve(user=other_user, model=SONNET, prompt_tokens=1_000, max_tokens=2_000, at=later)
    assert month_of(user).reserved == 0
    assert GlobalMonth.objects.get().reserved == Decimal("0.033")
    assert Reservation.objects.get().user == other_user


def test_a_refused_hold_leaves_both_months_as_they_were(user, settings):
    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.02")
    reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)  # $0.018
    with pytest.raises(BudgetExceeded):
        reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000, at=NOW)
    assert month_of(user).reserved == Decimal("0.018")
    assert GlobalMonth.objects.get().reserved == Decimal("0.018")


def test_the_hourly_command_releases_stale_holds(user):
    from io import StringIO

    from django.core.management import call_command

    reserve(user=user, model=SONNET, prompt_tokens=1_000, max_tokens=1_000)
    Reservation.objects.update(expires_at=NOW)  # long past
    out = StringIO()
    call_command("billing_release_stale", stdout=out)
    assert "Released 1 stale reservation(s)." in out.getvalue()
    assert UserMonth.objects.get(user=user).reserved == 0
