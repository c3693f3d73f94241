"""Reserve a call's worst case before it runs, settle it to the real cost after.

The workflow around every call to Claude:

    reservation = await areserve(user=..., model=..., prompt_tokens=..., max_tokens=...,
                                 purpose=Purpose.CHAT)        # may raise BudgetExceeded
    ... call Claude ...
    await asettle(reservation, usage=..., model=..., status=...)   # always, even on failure

A reservation holds its worst case against the user's month and the global month, under a
row lock on each, so concurrent calls can never together pass a budget. Settling writes the
ledger row, adds the real cost to both months and releases the hold, in one transaction.

Unpriced models: a model without a price cannot have a known worst case. While any budget
applies to the call (the user's or the global one), reserve() refuses it (UnpricedModel,
naming the model); with no budget in force the call runs, holds $0 and its ledger row is
recorded as unpriced (cost NULL), never billed at a guessed price.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DataError
from django.utils import timezone
from psycopg import errors as psycopg_errors

from billing.models import (
    MICRODOLLAR,
    CallStatus,
    LedgerEntry,
    Purpose,
    Reservation,
    UserBudget,
    month_start,
    next_month,
    utc_day,
)
from billing.pricing import price_for
from billing.rollups import rollup_statements
from billing.tokens import Tokens
from chatsite.db import (
    Statement,
    commit_with,
    commits_in_batch,
    ending_in_batch,
    insert_statement,
    orm,
    run_together,
    saved,
)
from conversations.models import Conversation

WARNING_SHARE = Decimal("0.8")
HOLD = dt.timedelta(hours=1)
BATCH_HOLD = dt.timedelta(hours=25)  # batches may take 24 h to end


class BudgetExceeded(Exception):
    """A call was refused before it ran; str() is the message for the user."""

    def __init__(self, message: str, *, scope: str, resets_on: dt.date | None) -> None:
        super().__init__(message)
        self.scope = scope  # "user", "global" or "price"
        self.resets_on = resets_on


class UnpricedModel(BudgetExceeded):
    """The model has no price, so its worst case cannot be held against a budget."""


def _limit(value: Any) -> Decimal | None:
    """A budget amount: None for unlimited (0, empty or unset)."""
    if value in (None, ""):
        return None
    amount = Decimal(str(value))
    return amount if amount > 0 else None


def user_budget(user) -> Decimal | None:
    """This user's monthly budget in USD: their override, else the default; None = unlimited."""
    override = list(UserBudget.objects.filter(user=user).values_list("monthly_usd", flat=True))
    if override:
        return _limit(override[0])
    return default_user_budget()


def default_user_budget() -> Decimal | None:
    return _limit(settings.BUDGET_USER_MONTHLY_USD)


def global_budget() -> Decimal | None:
    """The monthly cap on all users together; None = unlimited."""
    return _limit(settings.BUDGET_GLOBAL_MONTHLY_USD)


def format_usd(amount: Decimal) -> str:
    """$1,234.56 from a dollar up; below it up to four decimals ($0.033, $0.0078, $0.50),
    and micro-dollars below a hundredth of a cent ($0.000027)."""
    amount = Decimal(amount)
    if abs(amount) >= 1 or amount == 0:
        return f"${amount:,.2f}"
    places = Decimal("0.0001") if abs(amount) >= Decimal("0.0001") else Decimal("0.000001")
    text = f"{amount.quantize(places, ROUND_HALF_UP):f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{Decimal(text):.2f}"
    return f"${text}"


def format_day(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def resets_text(month: dt.date) -> str:
    return f"It resets on {format_day(next_month(month))} (UTC)."


def used_up_message(limit: Decimal, month: dt.date) -> str:
    return f"You have used your {format_usd(limit)} monthly budget. {resets_text(month)}"


def warning_message(committed: Decimal, limit: Decimal | None, month: dt.date) -> str:
    """The 80% warning for the user, or "" below it (committed = spent + in flight)."""
    if limit is None or committed < limit * WARNING_SHARE:
        return ""
    share = min(int(committed * 100 / limit), 100)
    return (
        f"You have used {share}% of your {format_usd(limit)} monthly budget "
        f"(including replies in progress). {resets_text(month)}"
    )


def reserve(
    *,
    user,
    model: str,
    prompt_tokens: int,
    max_tokens: int,
    purpose: str = Purpose.CHAT,
    batch: bool = False,
    cache_ttl: str | None = None,
    at: dt.datetime | None = None,
) -> Reservation:
    """Hold the call's worst case against the user's and the global month, or raise BudgetExceeded.

    The worst case is prompt_tokens at the input price (at the 5-minute or 1-hour cache-write
    price when cache_ttl is "5m"/"1h", since a prompt may be written to the cache) plus
    max_tokens at the output price, halved for batches, rounded up to the micro-dollar.
    prompt_tokens must not be an underestimate for the guarantee to hold. The returned
    reservation's `warning` is the 80% message ("" below 80%). A refusal leaves the caller's
    transaction (if any) usable and unchanged.
    """
    hold = Hold(
        user=user,
        model=model,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        purpose=purpose,
        batch=batch,
        cache_ttl=cache_ttl,
        at=at,
    )
    outcome = server_checked(partial(_hold_once, hold))  # the second names the budget
    if isinstance(outcome, BudgetExceeded):
        raise outcome  # out of the block: an exception in it would doom the caller's
    return outcome


def server_checked[T](attempt: Callable[[bool], T]) -> T:
    """`attempt(True)`: the work in one round trip with its COMMIT, a check on the server
    (`Hold.checked`, `settle(on_server=True)`) aborting it when a row is not as it counts
    on; if so, `attempt(False)`, the way that reads the rows back and finds out why."""
    try:
        return attempt(True)
    except DataError as exc:
        if not refused_on_server(exc):
            raise
    return attempt(False)


def _hold_once(hold: Hold, on_server: bool) -> Reservation | BudgetExceeded:
    """In its own transaction when not in one: alone, one round trip with the COMMIT, the
    budgets checked by the server (a refusal raises its DataError); else the holds, read
    back and checked here, then the site's hold with the COMMIT."""
    with ending_in_batch():
        if on_server and commits_in_batch():
            return hold.reserved(commit_with([*hold.checked, *hold.last]))
        outcome = hold.outcome(run_together(hold.first))
        if not isinstance(outcome, BudgetExceeded):
            commit_with(hold.last)
    return outcome


class Hold:
    """One reservation being made: its statements (which a caller may send together with its
    own in one round trip, see chatsite.db.run_together), then `outcome()` of their rows.

    The statements add the hold to the user's month, then to the global month (each upsert
    locks its row until the transaction ends: the same lock order everywhere), and insert the
    reservation. Without a site cap the global month's hold cannot refuse, so it comes last:
    `first` are the statements whose rows `outcome()` needs, `last` the rest, which a caller
    may send later in the transaction, with its COMMIT (chatsite.db.commit_with): the one row
    every call of the site updates is then locked for no round trip of the client. Where the
    whole transaction can end in one round trip, `checked` (the holds, the server's check of
    the budgets, the reservation) goes with `last` and the COMMIT, and no month is locked
    across a round trip at all; a refusal then aborts the transaction (`refused_on_server`)
    and the caller tries again with `first` and `outcome()`. Raises UnpricedModel at once for
    a model without a price while a budget applies.
    """

    def __init__(
        self,
        *,
        user,
        model: str,
        prompt_tokens: int,
        max_tokens: int,
        purpose: str = Purpose.CHAT,
        batch: bool = False,
        cache_ttl: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        at = at or timezone.now()
        self.user_id = user_id = getattr(user, "pk", user)
        self.month = month = month_start(utc_day(at))
        self.cap = global_budget()
        price = price_for(model, at=at)
        if price is None:
            if user_budget(user_id) is not None or self.cap is not None:
                raise UnpricedModel(
                    f"The model {model} has no price yet, so it cannot be used while budgets "
                    "are on. An administrator can add its price.",
                    scope="price",
                    resets_on=None,
                )
            amount = Decimal(0)
        else:
            amount = price.worst_case(
                prompt_tokens=prompt_tokens, max_tokens=max_tokens, batch=batch, cache_ttl=cache_ttl
            )
        self.amount = amount
        self.now = at
        self.reservation = Reservation(
            user_id=user_id,
            month=month,
            amount=amount,
            model=model,
            purpose=purpose,
            batch=batch,
            priced=price is not None,
            prompt_tokens=max(prompt_tokens, 0),
            max_tokens=max(max_tokens, 0),
            created_at=at,
            expires_at=at + (BATCH_HOLD if batch else HOLD),
        )
        user_hold = (_USER_HOLD, [user_id, month, amount, user_id])
        site_hold = (_GLOBAL_HOLD, [month, amount])
        reservation_row = insert_statement(self.reservation)
        if self.cap is None:
            self.first, self.last = [user_hold, reservation_row], [site_hold]
            check = (_CHECK, [default_user_budget(), user_id, month])
        else:
            self.first, self.last = [user_hold, site_hold, reservation_row], []
            check = (_CHECK_WITH_SITE, [month, self.cap, default_user_budget(), user_id, month])
        self.checked = [*self.first[:-1], check, reservation_row]

    @property
    def statements(self) -> list[Statement]:
        return [*self.first, *self.last]

    def reserved(self, rows: list[list[tuple]]) -> Reservation:
        """The reservation from the rows of `checked`, which the server let pass: when a
        caller sends `checked` in the round trip of its COMMIT (`commit_with`), a hold past a
        budget aborts the transaction there (`refused_on_server`), and the caller then takes
        the way of `first` and `outcome()`, which names the budget and frees expired holds.
        """
        committed, limit = self._user_committed(rows[0][0])
        reservation = saved(self.reservation, rows[len(self.checked) - 1])
        reservation.warning = warning_message(committed, limit, self.month)
        return reservation

    def _user_committed(self, user_row: tuple) -> tuple[Decimal, Decimal | None]:
        """The user's spend and holds (this one's included), and their monthly limit."""
        committed, override = _committed(user_row)
        return committed, _limit(override) if override is not None else default_user_budget()

    def outcome(self, rows: list[list[tuple]]) -> Reservation | BudgetExceeded:
        """The saved reservation, or the refusal (to raise) with the holds given back.

        Holds of calls whose process died count until released: after a refusal the expired
        ones that stand in the way (the user's own, or anyone's for the site's cap) are
        freed and the hold is tried once more. Call in the transaction that ran the rows.
        """
        outcome = self._take(rows)
        if (
            isinstance(outcome, BudgetExceeded)
            and outcome.scope != "price"
            and _release_expired(
                user_id=self.user_id if outcome.scope == "user" else None, now=self.now
            )
        ):
            outcome = self._take(run_together(self.statements[: len(rows)]))
        return outcome

    def _take(self, rows: list[list[tuple]]) -> Reservation | BudgetExceeded:
        """`rows`: those of `first`, or of all the statements."""
        if self.last:  # no cap: the site's hold is last, and ran only if its rows are here
            [user_row], inserted, *site_ran = rows
            site, site_held = Decimal(0), bool(site_ran)
        else:
            [user_row], [site_row], inserted = rows
            site, _ = _committed(site_row)
            site_held = True
        committed, limit = self._user_committed(user_row)
        month, amount = self.month, self.amount
        if limit is not None and committed > limit:
            refusal = BudgetExceeded(
                _refusal(limit=limit, committed=committed - amount, amount=amount, month=month),
                scope="user",
                resets_on=next_month(month),
            )
        elif self.cap is not None and site > self.cap:
            refusal = BudgetExceeded(
                "The site's monthly budget for Claude is used up. " + resets_text(month),
                scope="global",
                resets_on=next_month(month),
            )
        else:
            reservation = saved(self.reservation, inserted)
            reservation.warning = warning_message(committed, limit, month)
            return reservation
        # Give the holds back and drop the row, as for a call that never ran.
        reservation = saved(self.reservation, inserted)
        run_together(_release(reservation, spent=Decimal(0), site=site_held))
        return refusal


# One statement per month row: create it if missing, add the hold, return what is committed
# (and, for the user, their override: NULL without one, 0 for an unlimited one). Plain
# INSERT ... ON CONFLICT DO UPDATE ... RETURNING, the same on Postgres and SQLite >= 3.35.
# ROUND(..., 6): SQLite does decimal arithmetic in floating point, and a hold given back
# could leave -0.0000000001 reserved, which the month's non-negative check refuses.
_USER_HOLD = """
    INSERT INTO billing_usermonth (user_id, month, spent, reserved) VALUES (%s, %s, 0, %s)
    ON CONFLICT (user_id, month)
    DO UPDATE SET reserved = ROUND(billing_usermonth.reserved + EXCLUDED.reserved, 6)
    RETURNING spent, reserved,
        (SELECT COALESCE(b.monthly_usd, 0) FROM billing_userbudget b WHERE b.user_id = %s)
"""
_GLOBAL_HOLD = """
    INSERT INTO billing_globalmonth (month, spent, reserved) VALUES (%s, 0, %s)
    ON CONFLICT (month)
    DO UPDATE SET reserved = ROUND(billing_globalmonth.reserved + EXCLUDED.reserved, 6)
    RETURNING spent, reserved, NULL
"""


# The test of `Hold._take`, made by the server in the round trip of the COMMIT: a hold past
# the user's limit (their override, 0 or empty for unlimited, else the default) or the
# site's cap divides by zero, and the error aborts the transaction before its COMMIT. Both
# rows were upserted earlier in the same transaction, so they are locked and read as held.
_CHECK_TEMPLATE = """
    SELECT 1 / CASE WHEN (limits.usd > 0 AND u.spent + u.reserved > limits.usd){site}
        THEN 0 ELSE 1 END
    FROM billing_usermonth u, LATERAL (SELECT COALESCE(
        (SELECT COALESCE(b.monthly_usd, 0) FROM billing_userbudget b WHERE b.user_id = u.user_id),
        %s
    ) AS usd) limits
    WHERE u.user_id = %s AND u.month = %s
"""
_CHECK = _CHECK_TEMPLATE.format(site="")
_CHECK_WITH_SITE = _CHECK_TEMPLATE.format(
    site="\n        OR (SELECT g.spent + g.reserved FROM billing_globalmonth g"
    " WHERE g.month = %s) > %s"
)


def refused_on_server(exc: BaseException) -> bool:
    """Whether a database error is a server-side check refusing (`Hold.checked`, a hold past
    a budget; `settle(on_server=True)`, a row gone): the checks divide by zero."""
    return isinstance(exc.__cause__, psycopg_errors.DivisionByZero)


def _committed(row: tuple) -> tuple[Decimal, Decimal | None]:
    """A hold upsert's row: (spent + reserved, the user's override or None)."""
    spent, reserved, override = row
    committed = (_usd(spent) + _usd(reserved)).quantize(MICRODOLLAR)
    return committed, None if override is None else _usd(override)


def _usd(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _release_expired(*, user_id: int | None, now: dt.datetime) -> int:
    """Release expired holds (of one user, or of everyone); return how many."""
    expired = Reservation.objects.filter(expires_at__lt=now)
    if user_id is not None:
        expired = expired.filter(user_id=user_id)
    count = 0
    for stale in expired.order_by("pk"):
        release(stale)
        count += 1
    return count


def _refusal(*, limit: Decimal, committed: Decimal, amount: Decimal, month: dt.date) -> str:
    left = limit - committed
    if left <= 0:
        return used_up_message(limit, month)
    return (
        f"This request could cost up to {format_usd(amount)}, more than the "
        f"{format_usd(left)} left of your {format_usd(limit)} monthly budget. "
        f"{resets_text(month)}"
    )


def _release(reservation: Reservation, *, spent: Decimal, site: bool = True) -> list[Statement]:
    """Take the reservation's hold off both months (if it is still held) and add `spent`
    (`site=False`: the user's month only, the site's hold not having been made).

    The first statement locks the reservation's row and returns it if it was still there:
    a concurrent release of the same hold waits, then finds it gone and gives back nothing,
    so a hold is released once. The months (the user's row first) take the amount from the
    row, then it goes. The first statement touches no shared row; the others may go with the
    transaction's COMMIT (chatsite.db.commit_with).
    """
    pk, user_id, month = reservation.pk, reservation.user_id, reservation.month
    # ROUND(..., 6): SQLite does decimal arithmetic in floating point (see _USER_HOLD).
    released = (
        "ROUND(reserved - COALESCE((SELECT amount FROM billing_reservation WHERE id = %s), 0), 6)"
    )
    return [
        ("UPDATE billing_reservation SET amount = amount WHERE id = %s RETURNING id", [pk]),
        (
            "UPDATE billing_usermonth SET spent = ROUND(spent + %s, 6), "  # noqa: S608
            f"reserved = {released} WHERE user_id = %s AND month = %s",
            [spent, pk, user_id, month],
        ),
        *(
            [
                (
                    "UPDATE billing_globalmonth SET spent = ROUND(spent + %s, 6), "  # noqa: S608
                    f"reserved = {released} WHERE month = %s",
                    [spent, pk, month],
                )
            ]
            if site
            else []
        ),
        ("DELETE FROM billing_reservation WHERE id = %s", [pk]),
    ]


def settle(
    reservation: Reservation,
    *,
    usage: Mapping[str, Any],
    model: str,
    status: str,
    error_kind: str = "",
    request_id: str = "",
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
    conversation=None,
    message_id: int | None = None,
    conversation_exists: bool = False,
    along: Sequence[Statement] = (),
    check_along: Callable[[list[list[tuple]]], None] | None = None,
    last: bool = False,
    on_server: bool = False,
) -> LedgerEntry:
    """Write the call's ledger row at its real cost and release its reservation, atomically.

    `model` is the model that answered (the response's); `usage` is the API's usage dict
    (see Tokens.from_usage); failed and stopped calls pass whatever usage they got ({} if
    none). Settling twice writes two ledger rows but releases the hold only once.
    `conversation_exists`: the caller wrote to the conversation in this transaction, so it
    need not be looked up. `along`: the caller's own statements, sent to the database with
    the release, in the same transaction; `check_along` gets their rows (and may raise,
    which fails the transaction). `last`: nothing runs in the caller's transaction after
    this, so the settlement's last round trip may carry its COMMIT (chatsite.db.commit_with).
    `on_server`: where the transaction ends here (`commits_in_batch`), one round trip, on
    the word of the server that the hold is still there and the conversation and message
    (if given) exist; if one is not, the transaction aborts with a DataError
    (`refused_on_server`), and the caller settles again without `on_server` (which finds
    out which, and `check_along` then sees the rows: it is not called on this way).
    """
    tokens = Tokens.from_usage(usage)
    price = price_for(model, at=reservation.created_at)
    cost = price.cost(tokens, batch=reservation.batch) if price else None
    savings = price.cache_savings(tokens, batch=reservation.batch) if price else None
    status = status if status in CallStatus.values else CallStatus.FAILED
    user_id = reservation.user_id
    conversation_id = getattr(conversation, "pk", conversation)
    # No savepoint inside a caller's transaction: a failure here fails the caller's too.
    # Two round trips: the caller's statements with the hold's row locked; then the months,
    # the ledger row and the rollups (rows every call of the site updates), with the COMMIT
    # where the transaction ends here (chatsite.db.commit_with). One with `on_server`.
    lock_hold, *give_back = _release(reservation, spent=cost or Decimal(0))

    def entry(user_id: int | None, conversation_id: int | None, message_id: int | None):
        return LedgerEntry(
            user_id=user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            purpose=reservation.purpose,
            model=model,
            input_tokens=tokens.input,
            cache_write_5m_tokens=tokens.cache_write_5m,
            cache_write_1h_tokens=tokens.cache_write_1h,
            cache_read_tokens=tokens.cache_read,
            output_tokens=tokens.output,
            cost=cost,
            cache_savings=savings,
            priced=price is not None,
            batch=reservation.batch,
            ttft_ms=_ms(ttft_ms),
            duration_ms=_ms(duration_ms),
            status=status,
            error_kind=error_kind[:40],
            request_id=request_id[:100],
            created_at=reservation.created_at,
        )

    with ending_in_batch(last=last):
        if on_server and commits_in_batch():
            # All of it with the COMMIT; the check stops it if a row it counts on is gone.
            found = entry(user_id, conversation_id, message_id)
            check = (_SETTLE_CHECK, [reservation.pk, *[conversation_id] * 2, *[message_id] * 2])
            rows = commit_with(
                [
                    *along,
                    lock_hold,
                    check,
                    *give_back,
                    insert_statement(found),
                    *rollup_statements(found),
                ]
            )
            return saved(found, rows[len(along) + 2 + len(give_back)])
        rows = run_together([*along, lock_hold])
        if check_along is not None:
            check_along(rows[: len(along)])
        released = rows[len(along)]  # the hold's row, if this call released it
        # The ledger's references are not constraints: drop any deleted meanwhile.
        if not released and not _exists(get_user_model(), user_id):
            user_id = None
        if not conversation_exists and not _exists(Conversation, conversation_id):
            conversation_id = message_id = None
        found = entry(user_id, conversation_id, message_id)
        rows = commit_with([*give_back, insert_statement(found), *rollup_statements(found)])
    return saved(found, rows[len(give_back)])


# settle(on_server=True): the hold's row (locked by the statement before), the conversation
# and the message, each if given, are there, or a division by zero aborts the transaction.
_SETTLE_CHECK = """
    SELECT 1 / CASE WHEN EXISTS (SELECT 1 FROM billing_reservation WHERE id = %s)
        AND (%s::bigint IS NULL
             OR EXISTS (SELECT 1 FROM conversations_conversation WHERE id = %s))
        AND (%s::bigint IS NULL OR EXISTS (SELECT 1 FROM conversations_message WHERE id = %s))
        THEN 1 ELSE 0 END
"""


def _exists(model, pk) -> bool:
    return pk is not None and model.objects.filter(pk=pk).exists()


def _ms(value: float | None) -> int | None:
    return None if value is None else max(round(value), 0)


def release(reservation: Reservation) -> None:
    """Give back a reservation for a call that was never made (no ledger row)."""
    with ending_in_batch():
        commit_with(_release(reservation, spent=Decimal(0)))


def release_stale_reservations(*, now: dt.datetime | None = None) -> int:
    """Release holds past their expiry (their process died before settling); return how many."""
    return _release_expired(user_id=None, now=now or timezone.now())


async def areserve(
    *,
    user,
    model: str,
    prompt_tokens: int,
    max_tokens: int,
    purpose: str = Purpose.CHAT,
    batch: bool = False,
    cache_ttl: str | None = None,
    at: dt.datetime | None = None,
) -> Reservation:
    """Async reserve() for the chat turn (the ORM runs in a worker thread)."""
    return await orm(reserve)(
        user=user,
        model=model,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        purpose=purpose,
        batch=batch,
        cache_ttl=cache_ttl,
        at=at,
    )


async def asettle(
    reservation: Reservation,
    *,
    usage: Mapping[str, Any],
    model: str,
    status: str,
    error_kind: str = "",
    request_id: str = "",
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
    conversation=None,
    message_id: int | None = None,
) -> LedgerEntry:
    """Async settle()."""
    return await orm(settle)(
        reservation,
        usage=usage,
        model=model,
        status=status,
        error_kind=error_kind,
        request_id=request_id,
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
        conversation=conversation,
        message_id=message_id,
    )


async def arelease(reservation: Reservation) -> None:
    """Async release()."""
    await orm(release)(reservation)
