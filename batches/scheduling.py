"""The background worker's loop for one job, on Django's tasks framework (django-tasks-db).

Each job has one live *tick*: a task `advance_job(job_id, token)` whose token matches
`BatchJob.tick_token`; a tick whose token is stale exits at once. A tick that claims the
job first enqueues a *watchdog* tick (run_after = its lease's end), in the same transaction
as it takes the lease; then it does one step of work while a heartbeat extends the lease;
then it releases the lease and enqueues the next tick at the poll delay, which makes the
watchdog stale. If the worker dies mid-step (SIGKILL, power loss), its task row stays
RUNNING forever, but the watchdog is already queued: after the lease runs out it claims
the job and carries on from what the database says. Nothing is lost and, with the
idempotent steps of batchmode/nowmode, nothing is done twice. Enqueueing is a row in the
same database, so a job and its next tick always commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from batches.models import BatchJob

logger = logging.getLogger(__name__)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.BATCH_LEASE_SECONDS)


def _enqueue(job: BatchJob, *, at: dt.datetime | None) -> None:
    """Make a new live tick for the job (call inside a transaction that saves tick_token)."""
    job.tick_token = uuid.uuid4()
    ticker = advance_job.using(run_after=at) if at is not None else advance_job
    ticker.enqueue(job.pk, str(job.tick_token))


def start(job: BatchJob) -> None:
    """Schedule the job's first tick now (inside the transaction that creates the job)."""
    _enqueue(job, at=None)
    job.save(update_fields=["tick_token"])


def wake(job_id: int) -> None:
    """Run the job's next tick as soon as possible (after a cancel request)."""
    with transaction.atomic():
        job = BatchJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return
        _enqueue(job, at=job.lease_until if _leased(job) else None)
        job.save(update_fields=["tick_token"])


def _leased(job: BatchJob) -> bool:
    return job.lease_until is not None and job.lease_until > timezone.now()


def claim(job_id: int, token: str) -> uuid.UUID | None:
    """Take the job's lease for this tick and queue its watchdog; None if the tick is stale
    or another run holds the lease (then the tick is re-queued for when the lease ends)."""
    with transaction.atomic():
        job = BatchJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished or str(job.tick_token) != token:
            return None
        if _leased(job):
            _enqueue(job, at=job.lease_until)
            job.save(update_fields=["tick_token"])
            return None
        owner = uuid.uuid4()
        job.lease_owner = owner
        job.lease_until = timezone.now() + _lease()
        _enqueue(job, at=job.lease_until)  # the watchdog
        job.save(update_fields=["tick_token", "lease_owner", "lease_until"])
        return owner


def finish(job_id: int, owner: uuid.UUID, delay: float | None) -> None:
    """Release the lease; queue the next tick after `delay` seconds (None: the job ended)."""
    with transaction.atomic():
        job = BatchJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.lease_owner != owner:
            return  # the lease was lost meanwhile: the run that holds it owns the chain
        job.lease_owner = None
        job.lease_until = None
        fields = ["lease_owner", "lease_until", "tick_token"]
        if delay is None or job.is_finished:
            job.tick_token = None
        else:
            if job.cancel_requested and job.status != BatchJob.Status.CANCELING:
                delay = 0  # a cancel arrived during this step: act on it now
            _enqueue(job, at=timezone.now() + dt.timedelta(seconds=delay) if delay else None)
        job.save(update_fields=fields)


@contextlib.asynccontextmanager
async def holding_lease(job_id: int, owner: uuid.UUID) -> AsyncIterator[None]:
    """Extend the lease every third of its length while the body runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(settings.BATCH_LEASE_SECONDS / 3)
            await BatchJob.objects.filter(pk=job_id, lease_owner=owner).aupdate(
                lease_until=timezone.now() + _lease()
            )

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


@task
async def advance_job(job_id: int, token: str) -> str:
    """One tick of a batch job: claim it, do one step of work, schedule the next tick."""
    from batches.runner import run_step

    owner = await sync_to_async(claim)(job_id, token)
    if owner is None:
        return "skipped"
    delay: float | None
    try:
        async with holding_lease(job_id, owner):
            delay = await run_step(job_id)
    except Exception as exc:
        # A bug or an outage: keep the job and try again later (the step is idempotent).
        logger.exception("batch job %s: step failed", job_id)
        delay = await sync_to_async(_record_failure)(job_id, exc)
    await sync_to_async(finish)(job_id, owner, delay)
    return "finished" if delay is None else f"next in {delay:.2f}s"


def _record_failure(job_id: int, exc: Exception) -> float:
    """Note the error on the job and back off like a poll with no progress."""
    job = BatchJob.objects.get(pk=job_id)
    job.last_error = f"{exc.__class__.__name__}: {exc}"[:300]
    job.poll_interval = next_poll_interval(job.poll_interval, progressed=False)
    job.save(update_fields=["last_error", "poll_interval"])
    return job.poll_interval


def next_poll_interval(current: float, *, progressed: bool) -> float:
    """Exponential backoff between polls, reset by progress."""
    low, high = settings.BATCH_POLL_MIN_SECONDS, settings.BATCH_POLL_MAX_SECONDS
    if progressed or current <= 0:
        return low
    return min(max(current * 2, low), high)
