"""A job's budget hold: its whole worst case is reserved before anything is sent; each
result carves its own worst case off the hold and settles it to the real cost in the
result's own transaction; whatever is left is released when the job ends or is cancelled.

So a job can never spend past its hold, and a result is charged exactly once: the carve,
the ledger row and the stored result commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from billing.budgets import release, reserve, settle
from billing.models import LedgerEntry, Purpose, Reservation, month_start, utc_day
from billing.pricing import price_for
from batches.models import BatchJob, JobRequest


def purpose_of(*, batch: bool) -> str:
    return Purpose.BATCH if batch else Purpose.BULK


def hold_job(
    *, user, model: str, requests: Iterable[tuple[int, int]], batch: bool
) -> Reservation:
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


def _carve(job: BatchJob, request: JobRequest) -> Reservation:
    """Move one request's worst case off the job's hold into a reservation of its own.

    Call inside a transaction. If the hold is gone (released as stale after 25 h) the
    result is still charged, through an unsaved, empty reservation.
    """
    parent = Reservation.objects.select_for_update().filter(pk=job.reservation_id).first()
    if parent is None:
        return Reservation(
            user_id=job.user_id,
            month=month_start(utc_day(job.created_at)),
            amount=Decimal(0),
            model=job.model,
            purpose=purpose_of(batch=job.is_batch),
            batch=job.is_batch,
            priced=True,
            prompt_tokens=request.prompt_tokens_bound,
            max_tokens=request.max_tokens,
            created_at=job.created_at,
            expires_at=job.created_at,
        )
    price = price_for(parent.model, at=parent.created_at)
    wanted = (
        price.worst_case(
            prompt_tokens=request.prompt_tokens_bound,
            max_tokens=request.max_tokens,
            batch=parent.batch,
            cache_ttl=None,
        )
        if price
        else Decimal(0)
    )
    take = min(wanted, parent.amount)
    # Computed here, not with F(): the row is locked, and SQLite would subtract in floats.
    Reservation.objects.filter(pk=parent.pk).update(amount=parent.amount - take)
    return Reservation.objects.create(
        user_id=parent.user_id,
        month=parent.month,
        amount=take,
        model=parent.model,
        purpose=parent.purpose,
        batch=parent.batch,
        priced=parent.priced,
        prompt_tokens=request.prompt_tokens_bound,
        max_tokens=request.max_tokens,
        created_at=parent.created_at,
        expires_at=parent.expires_at,
    )


def charge(
    job: BatchJob,
    request: JobRequest,
    *,
    usage: Mapping[str, Any],
    model: str,
    status: str,
    error_kind: str = "",
    request_id: str = "",
    duration_ms: int | None = None,
) -> LedgerEntry:
    """Write one request's ledger row at its real cost (50% for batches); call inside the
    transaction that stores its result."""
    return settle(
        _carve(job, request),
        usage=usage,
        model=model or job.model,
        status=status,
        error_kind=error_kind,
        request_id=request_id,
        duration_ms=duration_ms,
    )


def release_job(job: BatchJob) -> None:
    """Give back what is left of the job's hold (nothing sent, cancelled, or unused)."""
    parent = Reservation.objects.filter(pk=job.reservation_id).first()
    if parent is not None:
        release(parent)


def held(job: BatchJob) -> Decimal:
    """What the job still holds against the budget."""
    amount = (
        Reservation.objects.filter(pk=job.reservation_id).values_list("amount", flat=True).first()
    )
    return amount or Decimal(0)
