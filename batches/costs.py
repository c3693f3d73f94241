"""A job's budget hold.

Before anything is sent, the worst case of every distinct request (an upper bound of its
prompt tokens plus its max_tokens, at the batch or list price) is reserved as one hold.
As results are stored, each is settled to its real cost on the ledger, and in the same
transaction the hold is renewed to the worst case of the requests still unanswered. So the
hold never covers less than what can still be spent, a result is charged exactly once
(its ledger row commits with it or not at all), and what a cancel or an early end leaves
is released. Renewing the whole hold (rather than subtracting each result's share) also
keeps the month's reserved total exact on SQLite, which does decimal sums in floats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from batches.models import BatchJob
from billing.budgets import BudgetExceeded, release, reserve, settle
from billing.models import LedgerEntry, Purpose, Reservation, month_start, utc_day

logger = logging.getLogger(__name__)


def purpose_of(*, batch: bool) -> str:
    return Purpose.BATCH if batch else Purpose.BULK


def hold_job(*, user, model: str, requests: Iterable[tuple[int, int]], batch: bool) -> Reservation:
    """Reserve the worst case of every (prompt_tokens_bound, max_tokens) request, or raise
    BudgetExceeded (its message is for the user)."""
    prompt_tokens = max_tokens = 0
    for prompt, longest in requests:
        prompt_tokens += prompt
        max_tokens += longest
    return reserve(
        user=user,
        model=model,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        purpose=purpose_of(batch=batch),
        batch=batch,
    )


def hold_rest(job: BatchJob) -> bool:
    """Replace the job's hold by the worst case of its unanswered requests (call inside the
    transaction that stores results). False if the budget refuses it (an administrator
    lowered it meanwhile): the job then holds nothing."""
    old = Reservation.objects.filter(pk=job.reservation_id).first()
    if old is not None:
        release(old)
    rest = job.requests.filter(result__isnull=True).aggregate(
        prompt=Sum("prompt_tokens_bound"), longest=Sum("max_tokens")
    )
    new_id, held = None, True
    if rest["prompt"]:
        try:
            new_id = reserve(
                user=job.user,
                model=job.model,
                prompt_tokens=rest["prompt"],
                max_tokens=rest["longest"],
                purpose=purpose_of(batch=job.is_batch),
                batch=job.is_batch,
            ).pk
        except BudgetExceeded as exc:
            logger.warning("batch job %s: its hold was refused (%s)", job.pk, exc.scope)
            held = False
    if new_id != job.reservation_id:
        BatchJob.objects.filter(pk=job.pk).update(reservation_id=new_id)
        job.reservation_id = new_id
    return held


def charge(
    job: BatchJob,
    *,
    usage: Mapping[str, Any],
    model: str,
    status: str,
    error_kind: str = "",
    request_id: str = "",
    duration_ms: int | None = None,
) -> LedgerEntry:
    """Write one result's ledger row at its real cost (half price for batches). Its worst
    case is covered by the job's hold, which the caller renews in the same transaction."""
    now = timezone.now()
    covered = Reservation(  # not saved: settling it releases nothing
        user_id=job.user_id,
        month=month_start(utc_day(now)),
        amount=Decimal(0),
        model=job.model,
        purpose=purpose_of(batch=job.is_batch),
        batch=job.is_batch,
        priced=True,
        prompt_tokens=0,
        max_tokens=0,
        created_at=now,
        expires_at=now,
    )
    return settle(
        covered,
        usage=usage,
        model=model or job.model,
        status=status,
        error_kind=error_kind,
        request_id=request_id,
        duration_ms=duration_ms,
    )


def release_job(job: BatchJob) -> None:
    """Give back what is left of the job's hold."""
    hold = Reservation.objects.filter(pk=job.reservation_id).first()
    if hold is not None:
        release(hold)


def held(job: BatchJob) -> Decimal:
    """What the job still holds against the budget."""
    amount = (
        Reservation.objects.filter(pk=job.reservation_id).values_list("amount", flat=True).first()
    )
    return amount or Decimal(0)
