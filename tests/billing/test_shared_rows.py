"""Rows every call of the site updates are locked only while the server commits.

The site's month, its day of spend and the latency buckets are one row for everyone (and a
user's month one row for all of their tabs): a transaction that holds one while its
client comes back for another round trip makes every other call of the site wait for that
client. So a turn's start sends the holds, checked by the server, with its COMMIT, and a
settlement sends the months, the ledger row and the rollups with its COMMIT
(chatsite.db.commit_with). Tests look at the rows from another connection between the
transaction's round trips.
"""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import DataError, OperationalError, connection, transaction
from django.utils import timezone

from billing import budgets
from billing.budgets import _GLOBAL_HOLD, reserve, settle
from billing.models import GlobalMonth, LedgerEntry, Reservation, UserMonth
from chatsite.db import COMMIT, SEPARATOR, ending_in_batch, statements_sent
from conversations import turns
from conversations.claude.streaming import ReplyOutcome
from conversations.models import Message
from tests.billing.conftest import NOW, SONNET, spend
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = dt.timedelta(hours=1)

SITE_MONTH = ("UPDATE billing_globalmonth SET reserved = reserved", [])
SITE_DAY = ("UPDATE billing_sitedaily SET calls = calls", [])
LATENCY = ("UPDATE billing_latencybucket SET calls = calls", [])


def user_month(user) -> tuple[str, list]:
    return "UPDATE billing_usermonth SET reserved = reserved WHERE user_id = %s", [user.pk]


class Batches(list):
    """The SQL of each round trip of this thread's connection (`connection.execute_wrapper`),
    each statement as the SQL it stands for (not the prepared statement it runs as)."""

    def __call__(self, execute, sql, params, many, context):
        self.append(SEPARATOR.join(statements_sent(sql)))
        return execute(sql, params, many, context)


def waits_for(*statements) -> list[str]:
    """The statements that, run now from another connection, wait for a lock (200 ms)."""
    waited: list[str] = []

    def probe() -> None:
        try:
            for sql, params in statements:
                try:
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = '200ms'")
                        cursor.execute(sql, params)
                        transaction.set_rollback(True)
                except OperationalError:
                    waited.append(sql.split()[1])
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return waited


def start_a_turn(monkeypatch, look_at, *, spent="0.03"):
    """A turn's start for a user whose rows of this month exist, looking at the rows of
    `look_at(user)` from another connection after its first round trip: (the statements
    that waited, the SQL of each round trip, the plan, the user)."""
    user = UserFactory()
    spend(user, spent, at=timezone.now())
    conversation = ConversationFactory(user=user)
    seen = []
    hold = turns._hold

    def look_then_hold(conversation, plan):
        seen.append(waits_for(*look_at(user)))
        return hold(conversation, plan)

    monkeypatch.setattr(turns, "_hold", look_then_hold)
    batches = Batches()
    with connection.execute_wrapper(batches):
        _, plan, _, _ = turns._create_turn(conversation.pk, "Hello")
    return seen, batches, plan, user


def test_a_turns_start_locks_the_months_only_with_its_commit(monkeypatch):
    seen, batches, plan, user = start_a_turn(
        monkeypatch, lambda user: [SITE_MONTH, user_month(user)]
    )

    # Two round trips: the conversation's lock and its context, then the holds (checked by
    # the server), the messages and the COMMIT. No month is held between them.
    assert seen == [[]]
    assert len(batches) == 2
    holds = batches[-1].split(SEPARATOR)
    assert "billing_usermonth" in holds[0]
    assert [holds[-2].strip(), holds[-1]] == [_GLOBAL_HOLD.strip(), COMMIT]
    month = plan.reservation.month
    assert GlobalMonth.objects.get(month=month).reserved == plan.reservation.amount > 0
    assert UserMonth.objects.get(user=user, month=month).reserved == plan.reservation.amount


def test_with_a_site_cap_the_sites_month_is_checked_in_the_same_round_trip(settings, monkeypatch):
    settings.BUDGET_GLOBAL_MONTHLY_USD = Decimal(100)
    seen, batches, plan, _ = start_a_turn(monkeypatch, lambda user: [SITE_MONTH])
    assert seen == [[]]
    assert len(batches) == 2 and batches[-1].endswith(SEPARATOR + COMMIT)
    assert GlobalMonth.objects.get().reserved == plan.reservation.amount


@pytest.mark.parametrize("over", ["user", "site"])
def test_a_turn_past_a_budget_is_refused_with_its_message_and_saves_nothing(
    settings, monkeypatch, over
):
    if over == "user":
        settings.BUDGET_USER_MONTHLY_USD = Decimal("0.031")
    else:
        settings.BUDGET_GLOBAL_MONTHLY_USD = Decimal("0.031")

    with pytest.raises(turns.TurnRejected) as refused:
        start_a_turn(monkeypatch, lambda user: [])

    if over == "user":
        assert "of your $0.031 monthly budget" in str(refused.value)
    else:
        assert "The site's monthly budget for Claude is used up" in str(refused.value)
    assert not Message.objects.exists()
    assert not Reservation.objects.exists()
    month = UserMonth.objects.get()
    assert (month.spent, month.reserved) == (Decimal("0.03"), 0)
    assert GlobalMonth.objects.get().reserved == 0


def test_an_expired_hold_in_the_way_is_freed_and_the_turn_goes_ahead(settings):
    user = UserFactory()
    conversation = ConversationFactory(user=user)
    stale = reserve(user=user, model=SONNET, prompt_tokens=0, max_tokens=10_000)  # $0.15
    Reservation.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - HOUR)
    # Room for this turn's hold ($0.03) only once the stale one is given back.
    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.10")

    _, plan, _, _ = turns._create_turn(conversation.pk, "Hello")

    assert list(Reservation.objects.values_list("pk", flat=True)) == [plan.reservation.pk]
    assert UserMonth.objects.get().reserved == plan.reservation.amount
    assert GlobalMonth.objects.get().reserved == plan.reservation.amount
    assert Message.objects.count() == 2


def test_turns_at_once_near_the_limit_take_exactly_what_fits(settings):
    first = ConversationFactory()
    _, plan, _, _ = turns._create_turn(first.pk, "Hello")
    amount = plan.reservation.amount  # every turn below holds the same worst case
    user = UserFactory()
    conversations = [ConversationFactory(user=user) for _ in range(8)]
    settings.BUDGET_USER_MONTHLY_USD = 3 * amount + amount / 2
    start = threading.Barrier(len(conversations))

    def attempt(conversation) -> bool:
        try:
            start.wait()
            turns._create_turn(conversation.pk, "Hello")
            return True
        except turns.TurnRejected:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(conversations)) as pool:
        started = list(pool.map(attempt, conversations))

    assert started.count(True) == 3
    assert UserMonth.objects.get(user=user).reserved == 3 * amount
    assert Reservation.objects.filter(user=user).count() == 3
    assert Message.objects.filter(conversation__user=user).count() == 6


def test_a_settlement_locks_the_months_and_rollups_only_with_its_commit():
    user = UserFactory()
    conversation = ConversationFactory(user=user)
    reply = MessageFactory(conversation=conversation, role="assistant")
    spend(user, "0.03", ttft_ms=300, duration_ms=2_000)  # every shared row exists
    reservation = reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100, at=NOW)
    seen = []

    entry = settle(
        reservation,
        usage={"input_tokens": 100, "output_tokens": 50},
        model=SONNET,
        status="complete",
        ttft_ms=280,
        duration_ms=1_900,
        conversation=conversation,
        message_id=reply.pk,
        along=[("UPDATE conversations_message SET content = %s WHERE id = %s", ["Hi", reply.pk])],
        check_along=lambda rows: seen.append(
            waits_for(SITE_MONTH, user_month(user), SITE_DAY, LATENCY)
        ),
    )

    assert seen == [[]]  # between its round trips, none of them is locked
    month = UserMonth.objects.get(user=user)
    assert (month.spent, month.reserved) == (Decimal("0.03") + entry.cost, 0)
    assert GlobalMonth.objects.get().spent == month.spent
    reply.refresh_from_db()
    assert reply.content == "Hi"


def a_finished_reply(user):
    """A turn started and its reply streamed: (conversation, plan, reply, outcome)."""
    conversation = ConversationFactory(user=user)
    conversation, plan, _, reply = turns._create_turn(conversation.pk, "Hello")
    reply.status, reply.content = Message.Status.COMPLETE, "Hi there"
    outcome = ReplyOutcome()
    outcome.usage = {"input_tokens": 20, "output_tokens": 5}
    outcome.final_usage, outcome.model, outcome.status = True, reply.model, "complete"
    outcome.ttft_ms, outcome.duration_ms = 280, 1_900
    return conversation, plan, reply, outcome


def test_a_replys_save_and_settlement_are_one_round_trip_with_the_commit():
    user = UserFactory()
    spend(user, "0.03", at=timezone.now(), ttft_ms=300, duration_ms=2_000)
    conversation, plan, reply, outcome = a_finished_reply(user)
    batches = Batches()
    with connection.execute_wrapper(batches):
        entry, saved = turns._finish_turn(conversation, reply, ["status", "content"], plan, outcome)

    # (the ledger's price is cached from the turn's start)
    assert len(batches) == 1
    assert "billing_globalmonth" in batches[0] and batches[0].endswith(SEPARATOR + COMMIT)
    assert saved and entry.conversation_id == conversation.pk
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Message.Status.COMPLETE, "Hi there")
    month = UserMonth.objects.get(user=user, month=plan.reservation.month)
    assert (month.spent, month.reserved) == (Decimal("0.03") + entry.cost, 0)
    assert not Reservation.objects.exists()


def test_a_settlement_whose_conversation_was_deleted_is_made_again_without_it():
    user = UserFactory()
    conversation, plan, reply, outcome = a_finished_reply(user)
    conversation.delete()

    entry, saved = turns._finish_turn(conversation, reply, ["status", "content"], plan, outcome)

    assert not saved
    entry.refresh_from_db()
    assert (entry.conversation_id, entry.message_id, entry.user_id) == (None, None, user.pk)
    month = UserMonth.objects.get(user=user)
    assert (month.spent, month.reserved) == (entry.cost, 0)
    assert GlobalMonth.objects.get().reserved == 0


def test_settling_a_hold_already_given_back_releases_nothing_more():
    user = UserFactory()
    conversation, plan, reply, outcome = a_finished_reply(user)
    turns._finish_turn(conversation, reply, ["status", "content"], plan, outcome)

    # Settled twice (the server's check finds the hold gone: the slower way writes it).
    entry, saved = turns._finish_turn(conversation, reply, ["status", "content"], plan, outcome)

    assert saved
    assert LedgerEntry.objects.filter(message_id=reply.pk).count() == 2
    month = UserMonth.objects.get(user=user)
    assert (month.spent, month.reserved) == (2 * entry.cost, 0)
    assert GlobalMonth.objects.get().reserved == 0


def test_the_server_check_of_a_settlement_aborts_it_when_the_hold_is_gone():
    user = UserFactory()
    reservation = reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100)
    budgets.release(reservation)

    with pytest.raises(DataError) as refused, ending_in_batch():
        settle(reservation, usage={"output_tokens": 5}, model=SONNET, status="complete",
               last=True, on_server=True)  # fmt: skip

    assert budgets.refused_on_server(refused.value)
    assert not LedgerEntry.objects.exists()


def test_inside_a_callers_transaction_nothing_commits_early():
    user = UserFactory()
    spend(user, "0.03")

    with pytest.raises(RuntimeError), transaction.atomic():
        spend(user, "0.06")
        budgets.release(reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100, at=NOW))
        raise RuntimeError("the caller fails after the settlement")

    # The caller's rollback took all of it back: no COMMIT was sent inside its transaction.
    assert LedgerEntry.objects.count() == 1
    month = UserMonth.objects.get(user=user)
    assert (month.spent, month.reserved) == (Decimal("0.03"), 0)
    assert GlobalMonth.objects.get().spent == Decimal("0.03")


def test_a_release_inside_a_longer_transaction_does_not_end_it():
    user = UserFactory()
    reservation = reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100, at=NOW)

    # As when a refused hold frees an expired one in the middle of a turn's transaction.
    with pytest.raises(RuntimeError), ending_in_batch():
        budgets.release(reservation)
        raise RuntimeError("the turn fails after the release")

    assert Reservation.objects.filter(pk=reservation.pk).exists()
    assert UserMonth.objects.get(user=user).reserved == reservation.amount
    assert GlobalMonth.objects.get().reserved == reservation.amount


def test_a_settlement_marked_last_inside_a_plain_transaction_does_not_commit_it():
    user = UserFactory()
    reservation = reserve(user=user, model=SONNET, prompt_tokens=100, max_tokens=100, at=NOW)

    # `last=True` passes the outer block's COMMIT on only if that block is ending_in_batch.
    with pytest.raises(RuntimeError), transaction.atomic():
        settle(reservation, usage={"output_tokens": 5}, model=SONNET, status="complete", last=True)
        raise RuntimeError("the caller fails after the settlement")

    assert not LedgerEntry.objects.exists()
    assert Reservation.objects.filter(pk=reservation.pk).exists()
