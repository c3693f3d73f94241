"""Retention: blank message content older than CHAT_RETENTION_DAYS, keep every number.

A purged message keeps its row, role, status, model and token counts (the cost ledger in
billing is never touched), so usage and spend figures stay exact; only the text (and the
system prompt recorded with a reply) is blanked. What was made of the content goes with it:
a conversation with nothing newer than the cutoff loses its title (Claude wrote it from the
first exchange; it becomes "New conversation") and its attached document, and a batch job
finished before the cutoff loses its prompts, system prompt and results' text (its counts,
costs and ledger rows stay). Conversations on hold for review (`review.holds`) are skipped.

Scheduling: the task `purge_old_messages_task` runs in the `db_worker` and enqueues its
next run for the following day at PURGE_HOUR_UTC, so one run keeps the chain going;
`migrate` (every deployment) starts the chain when retention is on and none is waiting.
Without a worker, run `python manage.py purge_old_messages` daily from cron.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.tasks import task
from django.utils import timezone

from chatsite.chains import queue_next
from conversations.models import Conversation, Message

logger = structlog.get_logger("conversations.retention")

PURGE_HOUR_UTC = 3
BATCH_SIZE = 2000


@dataclass(frozen=True)
class PurgeReport:
    """What one purge did."""

    retention_days: int
    cutoff: str | None  # ISO time; messages created before it were purged
    messages_purged: int
    conversations_purged: int
    conversations_held: int  # had old content but are on hold, left alone
    conversations_cleared: int = 0  # titles and documents of conversations idle since the cutoff
    batch_jobs_purged: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _purgeable(cutoff: datetime.datetime):
    from review.holds import held_conversation_ids

    old = Message.objects.filter(created_at__lt=cutoff).exclude(status=Message.Status.STREAMING)
    with_content = old.exclude(content="", system_prompt="")
    held = held_conversation_ids()
    return with_content.exclude(conversation_id__in=held), with_content.filter(
        conversation_id__in=held
    )


def purge_old_messages(
    *, days: int | None = None, now: datetime.datetime | None = None
) -> PurgeReport:
    """Blank the content of messages older than `days` (default CHAT_RETENTION_DAYS)."""
    days = settings.CHAT_RETENTION_DAYS if days is None else days
    if days <= 0:
        report = PurgeReport(days, None, 0, 0, 0)
        logger.info("retention_purge_skipped", reason="retention is off", **report.as_dict())
        return report
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    purgeable, held = _purgeable(cutoff)
    conversations = purgeable.values("conversation_id").distinct().count()
    conversations_held = held.values("conversation_id").distinct().count()
    purged = 0
    while True:
        # Small batches: no long lock on a busy table, progress survives an interruption.
        with transaction.atomic():
            ids = list(purgeable.values_list("id", flat=True)[:BATCH_SIZE])
            if not ids:
                break
            purged += Message.objects.filter(id__in=ids).update(content="", system_prompt="")
    report = PurgeReport(
        days,
        cutoff.isoformat(),
        purged,
        conversations,
        conversations_held,
        conversations_cleared=_clear_idle_conversations(cutoff),
        batch_jobs_purged=_purge_batch_jobs(cutoff),
    )
    logger.info("retention_purge", **report.as_dict())
    return report


def _clear_idle_conversations(cutoff: datetime.datetime) -> int:
    """Blank the titles and documents of conversations with no message (nor a reply being
    written) since the cutoff, unless held."""
    from review.holds import exclude_held

    newer = Message.objects.filter(conversation=OuterRef("pk")).filter(
        Q(created_at__gte=cutoff) | Q(status=Message.Status.STREAMING)
    )
    idle = exclude_held(Conversation.objects.filter(created_at__lt=cutoff)).exclude(Exists(newer))
    with_content = idle.exclude(
        title=Conversation.DEFAULT_TITLE, document_name="", document_text=""
    )
    return with_content.update(title=Conversation.DEFAULT_TITLE, document_name="", document_text="")


def _purge_batch_jobs(cutoff: datetime.datetime) -> int:
    """Blank the prompts and answers of batch jobs finished before the cutoff."""
    from batches.models import BatchJob, JobRequest, JobResult

    old = BatchJob.objects.filter(status__in=BatchJob.FINISHED, finished_at__lt=cutoff)
    requests = JobRequest.objects.filter(job__in=old).exclude(params={})
    results = JobResult.objects.filter(job__in=old).exclude(text="", error_message="")
    with transaction.atomic():
        jobs = set(old.exclude(system_prompt="").values_list("id", flat=True))
        jobs |= set(requests.values_list("job_id", flat=True))
        jobs |= set(results.values_list("job_id", flat=True))
        old.filter(id__in=jobs).update(system_prompt="")
        requests.update(params={})
        results.update(text="", error_message="")
    return len(jobs)


@task()
def purge_old_messages_task() -> dict:
    """Purge old message content, then queue tomorrow's run."""
    report = purge_old_messages()
    if report.retention_days > 0:  # switched off: the chain ends; `migrate` restarts it
        schedule_daily_purge()
    return report.as_dict()


def next_run(now: datetime.datetime | None = None) -> datetime.datetime:
    """The next PURGE_HOUR_UTC o'clock after `now`."""
    now = (now or timezone.now()).astimezone(datetime.UTC)
    at = now.replace(hour=PURGE_HOUR_UTC, minute=0, second=0, microsecond=0)
    return at if at > now else at + datetime.timedelta(days=1)


def schedule_daily_purge(*, now: datetime.datetime | None = None) -> bool:
    """Queue the next daily purge unless one is already waiting; True when queued."""
    return queue_next(purge_old_messages_task, next_run(now))
