"""Turn what the API sent back into stored results, each charged once on the ledger."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from batches import costs
from batches.models import BatchJob, JobRequest, JobResult
from billing.models import LedgerEntry
from billing.tokens import usage_dict
from conversations.claude.streaming import error_kind
from ops.calls import log_claude_call

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One request's result, ready to store."""

    kind: str
    text: str = ""
    stop_reason: str = ""
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    error_type: str = ""
    error_message: str = ""
    request_id: str = ""
    duration_ms: int | None = None
    billable: bool = False  # a call was made: write a ledger row (errored ones cost 0)


def message_text(message: Any) -> str:
    return "".join(getattr(block, "text", "") for block in message.content if block.type == "text")


def from_message(message: Any, *, request_id: str = "", duration_ms: int | None = None) -> Outcome:
    """A Message (a batch's succeeded result, or a direct call's response)."""
    return Outcome(
        kind=JobResult.Kind.SUCCEEDED,
        text=message_text(message),
        stop_reason=message.stop_reason or "",
        model=message.model,
        usage=usage_dict(message.usage),
        request_id=request_id,
        duration_ms=duration_ms,
        billable=True,
    )


def from_batch_item(item: Any, *, provider_id: str) -> Outcome:
    """One line of a Message Batch's results (succeeded, errored, canceled or expired)."""
    result = item.result
    request_id = f"{provider_id}/{item.custom_id}"[:100]
    if result.type == "succeeded":
        return from_message(result.message, request_id=request_id)
    if result.type == "errored":
        error = result.error.error
        return Outcome(
            kind=JobResult.Kind.ERRORED,
            error_type=error.type,
            error_message=error.message,
            request_id=result.error.request_id or request_id,
            billable=True,
        )
    if result.type == "canceled":
        return Outcome(kind=JobResult.Kind.CANCELED)
    return Outcome(kind=JobResult.Kind.EXPIRED, error_message="Not processed within 24 hours.")


def from_error(exc: BaseException, *, duration_ms: int | None = None) -> Outcome:
    """A direct call that failed (after the SDK's retries)."""
    return Outcome(
        kind=JobResult.Kind.ERRORED,
        error_type=error_kind(exc),
        error_message=str(getattr(exc, "message", "") or exc)[:2000],
        request_id=getattr(exc, "request_id", None) or "",
        duration_ms=duration_ms,
        billable=True,
    )


def canceled() -> Outcome:
    return Outcome(kind=JobResult.Kind.CANCELED, error_message="Cancelled before it was sent.")


def store_results(job: BatchJob, outcomes: Iterable[tuple[JobRequest, Outcome]]) -> int:
    """Store each request's result with its ledger row, once, and renew the job's hold to
    what is still unanswered, all in one transaction; return how many were new.

    A result already stored (a re-run after a crash, or another worker) is skipped whole,
    its charge included: the unique (job, custom_id) constraint decides, inside the same
    transaction as the ledger row.
    """
    stored = 0
    calls: list[dict[str, Any]] = []
    with transaction.atomic():
        for request, outcome in outcomes:
            try:
                with transaction.atomic():
                    result = JobResult.objects.create(
                        job=job,
                        request=request,
                        custom_id=request.custom_id,
                        kind=outcome.kind,
                        text=outcome.text,
                        stop_reason=outcome.stop_reason[:30],
                        model=outcome.model[:100],
                        input_tokens=outcome.usage.get("input_tokens", 0),
                        output_tokens=outcome.usage.get("output_tokens", 0),
                        usage=outcome.usage,
                        error_type=outcome.error_type[:60],
                        error_message=outcome.error_message,
                        created_at=timezone.now(),
                    )
            except IntegrityError:
                continue  # stored before: neither the result nor its charge again
            stored += 1
            if outcome.billable:
                entry = costs.charge(
                    job,
                    usage=outcome.usage,
                    model=outcome.model,
                    status="complete" if outcome.kind == JobResult.Kind.SUCCEEDED else "failed",
                    error_kind=outcome.error_type,
                    request_id=outcome.request_id,
                    duration_ms=outcome.duration_ms,
                )
                result.cost = entry.cost
                result.ledger_entry_id = entry.pk
                result.save(update_fields=["cost", "ledger_entry_id"])
                calls.append(_call_record(job, outcome, entry))
        if stored:
            costs.hold_rest(job)
    for call in calls:  # committed: now the logs, metrics and error-rate window
        log_claude_call(**call)
    return stored


def _call_record(job: BatchJob, outcome: Outcome, entry: LedgerEntry) -> dict[str, Any]:
    """ops' record of one call (ids, counts and kinds; never the text)."""
    return {
        "request_id": outcome.request_id,
        "user_id": job.user_id,
        "conversation_id": None,
        "model": entry.model,
        "usage": outcome.usage,
        "cost": entry.cost,
        "ttft_ms": None,
        "duration_ms": outcome.duration_ms,
        "stop_reason": outcome.stop_reason,
        "status": entry.status,
        "error_kind": outcome.error_type if outcome.kind == JobResult.Kind.ERRORED else "",
        "purpose": entry.purpose,
    }


def unanswered(requests) -> list[JobRequest]:
    """The requests of a queryset that have no stored result yet."""
    return list(requests.filter(result__isnull=True).order_by("pk"))
