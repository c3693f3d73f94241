"""Retention: blank message content older than CHAT_RETENTION_DAYS, keep every number.

A purged message keeps its row, role, status, model and token counts (the cost ledger in
billing is never touched), so usage and spend figures stay exact; only the text (and the
system prompt recorded with a reply) is blanked. Conversations on hold for review
(`review.holds`) are skipped.

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
from django.tasks import TaskResultStatus, task
from django.utils import timezone

from conversations.models import Message

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
    report = PurgeReport(days, cutoff.isoformat(), purged, conversations, conversations_held)
    logger.info("retention_purge", **report.as_dict())
    return report


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


def _waiting_runs() -> int | None:
    """Purge runs queued in the database backend, or None for another backend."""
    try:
        from django_tasks_db.backend import DatabaseBackend
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover - the database backend is a dependency
        return None
    if not isinstance(purge_old_messages_task.get_backend(), DatabaseBackend):
        return None
    return DBTaskResult.objects.filter(
        task_path=purge_old_messages_task.module_path, status=TaskResultStatus.READY
    ).count()


def schedule_daily_purge(*, now: datetime.datetime | None = None) -> bool:
    """Queue the next daily purge unless one is already waiting; True when queued."""
    waiting = _waiting_runs()
    if waiting is None or waiting > 0:
        return False  # a backend that cannot defer would run it right now: use cron then
    run_after = next_run(now)
    purge_old_messages_task.using(run_after=run_after).enqueue()
    logger.info("retention_purge_scheduled", run_after=run_after.isoformat())
    return True
