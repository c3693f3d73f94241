"""Jobs run now: direct calls, a few at a time (an asyncio.Semaphore), at the full price.

Each step sends up to a slice of the unanswered requests and stores each result (with its
ledger row) as soon as it arrives, so a restart re-sends only the calls that were in
flight when the worker died: at-least-once for those, exactly-once for everything stored.
Every call passes the same rate limits as a chat reply (waiting, not failing, when over)
and the per-process cap on concurrent calls.
"""

from __future__ import annotations

import asyncio
import time

import anthropic
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from limits import parse

from batches import costs, results
from batches.jobs import afinalize
from batches.models import BatchJob, JobRequest, JobResult
from conversations.claude import breaker
from conversations.claude.streaming import OUTAGE_KINDS
from conversations.throttle import RULES, RateLimited, call_slots, check_rate_limits

SLICE_PER_SLOT = 4  # requests per step for each concurrent slot
RATE_LIMIT_PATIENCE = 600.0  # seconds a call may wait for the rate limits


async def step(job: BatchJob, client: anthropic.AsyncAnthropic) -> float | None:
    if job.cancel_requested:
        await sync_to_async(_cancel_unanswered)(job)
        await afinalize(job.pk)
        return None
    limit = settings.BATCH_NOW_CONCURRENCY * SLICE_PER_SLOT
    pending = await sync_to_async(_unanswered)(job, limit)
    if not pending:
        await afinalize(job.pk)
        return None
    if not await sync_to_async(_renew_hold)(job):
        await sync_to_async(_refuse_unanswered)(job)
        await afinalize(job.pk)
        return None
    if await breaker.state() == "open":
        return float(settings.CLAUDE_BREAKER_COOLDOWN)  # Claude is down: wait, don't fail
    slots = asyncio.Semaphore(settings.BATCH_NOW_CONCURRENCY)
    retrying = client.with_options(max_retries=settings.CLAUDE_MAX_RETRIES)

    async def send(request: JobRequest) -> None:
        async with slots:
            if await BatchJob.objects.filter(pk=job.pk, cancel_requested=True).aexists():
                return
            outcome = await _call(retrying, job, request)
            await sync_to_async(results.store_results)(job, [(request, outcome)])

    async with asyncio.TaskGroup() as group:
        for request in pending:
            group.create_task(send(request))
    return 0.0


async def _call(client: anthropic.AsyncAnthropic, job: BatchJob, request: JobRequest):
    tokens = request.prompt_tokens_bound + request.max_tokens
    if not await _wait_for_rate_limits(job.user_id, tokens):
        return results.Outcome(
            kind=JobResult.Kind.ERRORED,
            error_type="rate_limited",
            error_message="Not sent: the rate limits did not allow it within "
            f"{RATE_LIMIT_PATIENCE:.0f} seconds.",
        )
    started = time.monotonic()
    try:
        async with call_slots():
            response = await client.messages.create(**request.params)
    except (anthropic.APIError, OSError) as exc:
        outcome = results.from_error(exc, duration_ms=_ms_since(started))
        if outcome.error_type in OUTAGE_KINDS:
            await breaker.record_failure()
        return outcome
    await breaker.record_success()
    return results.from_message(
        response,
        request_id=getattr(response, "_request_id", None) or "",
        duration_ms=_ms_since(started),
    )


async def _wait_for_rate_limits(user_id: int, tokens: int) -> bool:
    """Wait until the user's and the global limits allow one more call (False: gave up, as
    when one request alone is over a per-minute token limit)."""
    for rule in RULES:
        limit = getattr(settings, rule.setting)
        if rule.kind == "tokens" and limit and tokens > parse(limit).amount:
            return False  # this one request is over the limit on its own: it never fits
    deadline = time.monotonic() + RATE_LIMIT_PATIENCE
    while True:
        try:
            await check_rate_limits(user_id=user_id, tokens=tokens)
            return True
        except RateLimited as exc:
            if time.monotonic() + exc.retry_in > deadline:
                return False
            await asyncio.sleep(exc.retry_in)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _unanswered(job: BatchJob, limit: int) -> list[JobRequest]:
    return list(job.requests.filter(result__isnull=True).order_by("pk")[:limit])


def _cancel_unanswered(job: BatchJob) -> None:
    pending = results.unanswered(job.requests.defer("params"))
    results.store_results(job, [(request, results.canceled()) for request in pending])


def _renew_hold(job: BatchJob) -> bool:
    """Hold the worst case of what is left before sending more (and after any restart)."""
    with transaction.atomic():
        return costs.hold_rest(job)


def _refuse_unanswered(job: BatchJob) -> None:
    refused = results.Outcome(
        kind=JobResult.Kind.ERRORED,
        error_type="budget",
        error_message="Not sent: your budget no longer covers the rest of this job.",
    )
    pending = results.unanswered(job.requests.defer("params"))
    results.store_results(job, [(request, refused) for request in pending])
