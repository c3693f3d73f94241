"""Batch job workflows: create (validate, limit, reserve, store, schedule), cancel, finish,
and the progress the job page shows."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from batches import costs, scheduling
from batches.models import BatchJob, JobRequest, JobResult, JobRow, ProviderBatch
from batches.uploads import ParsedRow
from billing.budgets import release
from conversations.throttle import check_rate_limits

BULK_SIZE = 2000
API_MAX_REQUESTS = 100_000  # per Message Batch
REQUEST_OVERHEAD_BOUND = 16
MESSAGE_OVERHEAD_BOUND = 8


class JobRefused(Exception):
    """The job cannot run as asked; str() is the message for the user."""


def request_params(
    row: ParsedRow, *, model: str, system_prompt: str, max_tokens: int
) -> dict[str, Any]:
    """The Messages API parameters of one row (its own settings win over the job's)."""
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": row.max_tokens or max_tokens,
        "messages": row.messages,
    }
    system = row.system if row.system is not None else system_prompt
    if system:
        params["system"] = system
    if row.temperature is not None:
        params["temperature"] = row.temperature
    return params


def params_hash(params: dict[str, Any]) -> str:
    """Identical requests hash the same (key order and spacing don't matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def prompt_token_bound(params: dict[str, Any]) -> int:
    """An upper bound of the prompt's input tokens: a token is at least one UTF-8 byte."""
    total = REQUEST_OVERHEAD_BOUND + len(params.get("system", "").encode())
    for message in params["messages"]:
        content = message["content"]
        texts = [content] if isinstance(content, str) else [b["text"] for b in content]
        total += MESSAGE_OVERHEAD_BOUND * len(texts) + sum(len(t.encode()) for t in texts)
    return total


@dataclass
class _Unique:
    params: dict[str, Any]
    bound: int
    index: int


def create_job(
    *,
    user,
    name: str,
    rows: Sequence[ParsedRow],
    model: str,
    system_prompt: str,
    max_tokens: int,
    mode: str,
) -> BatchJob:
    """Store a validated job and schedule it, after its limits and budget pass.

    Raises JobRefused, RateLimited or BudgetExceeded (each with a message for the user)
    before anything is stored or sent. Identical rows become one request.
    """
    unique: dict[str, _Unique] = {}
    row_hashes = []
    for row in rows:
        params = request_params(
            row, model=model, system_prompt=system_prompt, max_tokens=max_tokens
        )
        digest = params_hash(params)
        if digest not in unique:
            unique[digest] = _Unique(params, prompt_token_bound(params), len(unique) + 1)
        row_hashes.append(digest)
    if mode == BatchJob.Mode.NOW and len(unique) > settings.BATCH_NOW_MAX_ROWS:
        raise JobRefused(
            f"“Now” runs at most {settings.BATCH_NOW_MAX_ROWS:,} distinct requests; this file "
            f"has {len(unique):,}. Use Message Batches for larger jobs."
        )
    # A submission counts as one request against the rate limits. Its tokens are not
    # counted here: batches are not subject to per-minute token limits, and "now" jobs
    # pass the limits call by call in the worker.
    async_to_sync(check_rate_limits)(user_id=user.pk, tokens=0)
    batch = mode == BatchJob.Mode.BATCH
    reservation = costs.hold_job(
        user=user,
        model=model,
        requests=[(u.bound, u.params["max_tokens"]) for u in unique.values()],
        batch=batch,
    )
    try:
        with transaction.atomic():
            job = _store(
                user=user,
                name=name,
                model=model,
                system_prompt=system_prompt,
                max_tokens=max_tokens,
                mode=mode,
                rows=rows,
                row_hashes=row_hashes,
                unique=unique,
                reservation=reservation,
            )
            scheduling.start(job)
    except BaseException:
        release(reservation)
        raise
    return job


def _store(*, rows, row_hashes, unique, reservation, **fields) -> BatchJob:
    job = BatchJob.objects.create(
        **fields,
        row_count=len(rows),
        request_count=len(unique),
        reservation_id=reservation.pk,
        reserved_usd=reservation.amount,
        poll_interval=settings.BATCH_POLL_MIN_SECONDS,
    )
    chunks: list[ProviderBatch] = []
    split = min(max(settings.BATCH_SPLIT_SIZE, 1), API_MAX_REQUESTS)
    if job.is_batch:
        count = math.ceil(len(unique) / split)
        chunks = ProviderBatch.objects.bulk_create(
            ProviderBatch(job=job, index=i, size=min(split, len(unique) - i * split))
            for i in range(count)
        )
    requests = JobRequest.objects.bulk_create(
        (
            JobRequest(
                job=job,
                custom_id=f"job{job.pk}-{u.index}",
                params_hash=digest,
                params=u.params,
                prompt_tokens_bound=u.bound,
                max_tokens=u.params["max_tokens"],
                provider_batch=chunks[(u.index - 1) // split] if chunks else None,
            )
            for digest, u in unique.items()
        ),
        batch_size=BULK_SIZE,
    )
    by_hash = {r.params_hash: r for r in requests}
    JobRow.objects.bulk_create(
        (
            JobRow(job=job, line=row.line, custom_id=row.custom_id, request=by_hash[digest])
            for row, digest in zip(rows, row_hashes, strict=True)
        ),
        batch_size=BULK_SIZE,
    )
    return job


def request_cancel(job: BatchJob) -> bool:
    """Ask the worker to cancel the job (unsent requests are cancelled, the hold released)."""
    updated = BatchJob.objects.filter(
        pk=job.pk,
        cancel_requested=False,
        status__in=[BatchJob.Status.QUEUED, BatchJob.Status.RUNNING],
    ).update(cancel_requested=True)
    if updated:
        scheduling.wake(job.pk)
        job.cancel_requested = True
    return bool(updated)


def finalize(job_id: int, *, failed: bool = False) -> None:
    """End the job: give back what is left of its hold and set its final status."""
    with transaction.atomic():
        job = BatchJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return
        costs.release_job(job)
        if job.cancel_requested:
            job.status = BatchJob.Status.CANCELED
        elif failed:
            job.status = BatchJob.Status.FAILED
        else:
            job.status = BatchJob.Status.COMPLETED
        job.finished_at = timezone.now()
        job.reservation_id = None
        job.save(update_fields=["status", "finished_at", "reservation_id"])


afinalize = sync_to_async(finalize)

STATES = ("waiting", "processing", *JobResult.Kind.values)


@dataclass
class Progress:
    counts: dict[str, int]
    cost: Decimal
    held: Decimal
    done: int
    total: int


def progress(job: BatchJob) -> Progress:
    """Rows per state (waiting, processing, succeeded, errored, canceled, expired), the
    cost so far and what the job still holds against the budget."""
    counts = Counter(dict.fromkeys(STATES, 0))
    by_kind = (
        JobRow.objects.filter(job=job)
        .values("request__result__kind", "request__provider_batch__provider_id")
        .annotate(n=Count("pk"))
    )
    for item in by_kind:
        kind = item["request__result__kind"]
        if kind is None:
            sent = item["request__provider_batch__provider_id"] is not None or (
                not job.is_batch and job.status != BatchJob.Status.QUEUED
            )
            kind = "processing" if sent else "waiting"
        counts[kind] += item["n"]
    cost = JobResult.objects.filter(job=job).aggregate(total=Sum("cost"))["total"]
    done = sum(counts[k] for k in JobResult.Kind.values)
    return Progress(
        counts=dict(counts),
        cost=cost or Decimal(0),
        held=costs.held(job),
        done=done,
        total=job.row_count,
    )
