"""Jobs through the Message Batches API: submit each provider batch once, poll, store results.

Exactly-once submission: a provider batch row goes PENDING -> SUBMITTING in a committed,
conditional update *before* the create call, and gets its provider id right after it. A
crash between the two leaves it SUBMITTING; the next step reconciles it against the API's
list of batches (one created since the submission began, with the same number of requests,
that no job knows yet, is adopted) and only resubmits once it is sure none was created.
Results are matched by custom_id, in any order, and stored once each (results.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import anthropic
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from batches import results
from batches.jobs import afinalize
from batches.models import BatchJob, JobRequest, JobResult, ProviderBatch
from batches.scheduling import next_poll_interval
from conversations.claude.streaming import error_kind

logger = logging.getLogger(__name__)

State = ProviderBatch.State
CLOCK_SKEW = dt.timedelta(minutes=5)  # between our clock and the API's created_at
INGEST_SLICE = 100  # results stored per transaction (short: the heartbeat waits for it)
REFUSED = {400, 401, 403, 404, 413, 422}  # the API surely did not create the batch


async def step(job: BatchJob, client: anthropic.AsyncAnthropic) -> float | None:
    """Submit, cancel, poll and ingest each unfinished provider batch of the job."""
    chunks = [c async for c in job.provider_batches.exclude(state__in=ProviderBatch.DONE)]
    progressed = False
    for chunk in chunks:
        progressed |= await _advance(job, chunk, client)
    if not await job.provider_batches.exclude(state__in=ProviderBatch.DONE).aexists():
        all_failed = not await job.provider_batches.exclude(state=State.FAILED).aexists()
        await afinalize(job.pk, failed=all_failed)
        return None
    interval = next_poll_interval(job.poll_interval, progressed=progressed)
    await BatchJob.objects.filter(pk=job.pk).aupdate(poll_interval=interval, last_error="")
    return interval


async def _advance(job: BatchJob, chunk: ProviderBatch, client) -> bool:
    changed = False
    if chunk.state == State.SUBMITTING:
        changed |= await _reconcile(chunk, client)
    if job.cancel_requested and chunk.state == State.PENDING:
        await sync_to_async(_resolve_unanswered)(job, chunk, results.canceled(), State.INGESTED)
        return True
    if chunk.state == State.PENDING:
        changed |= await _submit(job, chunk, client)
    try:
        if job.cancel_requested and chunk.state == State.IN_PROGRESS:
            await _save_status(chunk, await client.messages.batches.cancel(chunk.provider_id))
            changed = True
        if chunk.state in (State.IN_PROGRESS, State.CANCELING):
            before = (chunk.processing_status, chunk.request_counts)
            await _save_status(chunk, await client.messages.batches.retrieve(chunk.provider_id))
            changed |= before != (chunk.processing_status, chunk.request_counts)
        if chunk.state == State.ENDED:
            await _ingest(job, chunk, client)
            changed = True
    except anthropic.NotFoundError:
        # Deleted at the API (or, in demo mode, lost with the worker's in-process fake).
        gone = results.Outcome(
            kind=JobResult.Kind.EXPIRED,
            error_type="not_found",
            error_message="This batch is no longer at the API; its requests were not answered.",
        )
        await sync_to_async(_resolve_unanswered)(job, chunk, gone, State.INGESTED)
        changed = True
    return changed


async def _submit(job: BatchJob, chunk: ProviderBatch, client) -> bool:
    started = timezone.now()
    claimed = await ProviderBatch.objects.filter(pk=chunk.pk, state=State.PENDING).aupdate(
        state=State.SUBMITTING, submit_started_at=started
    )
    if not claimed:
        return False  # another run is on it
    chunk.state, chunk.submit_started_at = State.SUBMITTING, started
    requests = await sync_to_async(_wire_requests)(chunk)
    try:
        batch = await client.messages.batches.create(requests=requests)
    except anthropic.RateLimitError:
        await _set_state(chunk, State.PENDING)  # refused: nothing was created
        raise
    except anthropic.APIStatusError as exc:
        if exc.status_code not in REFUSED:
            raise  # it may exist: stay SUBMITTING, the next step reconciles
        refused = results.Outcome(
            kind=JobResult.Kind.ERRORED,
            error_type=error_kind(exc),
            error_message=str(exc.message)[:2000],
            request_id=exc.request_id or "",
        )
        chunk.error = str(exc.message)[:300]
        await sync_to_async(_resolve_unanswered)(job, chunk, refused, State.FAILED)
        return True
    await _save_status(chunk, batch)
    logger.info("batch job %s: submitted %s (%d requests)", job.pk, batch.id, chunk.size)
    return True


async def _reconcile(chunk: ProviderBatch, client) -> bool:
    """Adopt the batch a crashed submission created, or go back to PENDING if there is none."""
    since = chunk.submit_started_at - CLOCK_SKEW
    candidates = []
    async for batch in client.messages.batches.list(limit=100):
        if batch.created_at < since:
            break
        if _total(batch.request_counts) == chunk.size:
            candidates.append(batch)
    ids = [batch.id for batch in candidates]
    known = {
        pid
        async for pid in ProviderBatch.objects.filter(provider_id__in=ids).values_list(
            "provider_id", flat=True
        )
    }
    unclaimed = [batch for batch in candidates if batch.id not in known]
    if unclaimed:
        batch = min(unclaimed, key=lambda b: b.created_at)
        logger.warning("batch job %s: adopting %s after a crash", chunk.job_id, batch.id)
        await _save_status(chunk, batch)
        return True
    lease = dt.timedelta(seconds=settings.BATCH_LEASE_SECONDS)
    if timezone.now() - chunk.submit_started_at < lease:
        return False  # too soon to be sure the API has none: look again next step
    await _set_state(chunk, State.PENDING)
    return True


def _total(counts: Any) -> int:
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


async def _save_status(chunk: ProviderBatch, batch: Any) -> None:
    """Record the API's view of the batch (and its id, on first sight)."""
    status = batch.processing_status
    chunk.provider_id = batch.id
    chunk.processing_status = status
    chunk.request_counts = batch.request_counts.model_dump()
    chunk.state = {
        "in_progress": State.IN_PROGRESS,
        "canceling": State.CANCELING,
        "ended": State.ENDED,
    }.get(status, State.IN_PROGRESS)
    await chunk.asave(update_fields=["provider_id", "processing_status", "request_counts", "state"])


async def _set_state(chunk: ProviderBatch, state: str) -> None:
    chunk.state = state
    await chunk.asave(update_fields=["state"])


async def _ingest(job: BatchJob, chunk: ProviderBatch, client) -> None:
    """Download the results (any order), store each once, then close the provider batch."""
    pending = await sync_to_async(_unanswered_by_id)(chunk)
    if pending:
        buffer: list[tuple[JobRequest, results.Outcome]] = []
        async for item in await client.messages.batches.results(chunk.provider_id):
            request = pending.pop(item.custom_id, None)
            if request is None:
                continue  # stored before a restart, or not ours
            buffer.append((request, results.from_batch_item(item, provider_id=chunk.provider_id)))
            if len(buffer) >= INGEST_SLICE:
                await sync_to_async(results.store_results)(job, buffer)
                buffer = []
        if buffer:
            await sync_to_async(results.store_results)(job, buffer)
    missing = results.Outcome(
        kind=JobResult.Kind.ERRORED,
        error_type="missing_result",
        error_message="The API's results had no line for this request.",
    )
    await sync_to_async(_resolve_unanswered)(job, chunk, missing, State.INGESTED)


def _wire_requests(chunk: ProviderBatch) -> list[dict[str, Any]]:
    return [
        {"custom_id": custom_id, "params": params}
        for custom_id, params in chunk.requests.order_by("pk").values_list("custom_id", "params")
    ]


def _unanswered_by_id(chunk: ProviderBatch) -> dict[str, JobRequest]:
    return {r.custom_id: r for r in results.unanswered(chunk.requests.defer("params"))}


def _resolve_unanswered(
    job: BatchJob, chunk: ProviderBatch, outcome: results.Outcome, state: str
) -> None:
    """Give every request of the chunk still without a result this outcome; set the state."""
    pending = results.unanswered(chunk.requests.defer("params"))
    for start in range(0, len(pending), INGEST_SLICE):
        results.store_results(job, [(r, outcome) for r in pending[start : start + INGEST_SLICE]])
    chunk.state = state
    chunk.save(update_fields=["state", "error"])
