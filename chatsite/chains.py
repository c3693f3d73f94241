"""Tasks that run on a schedule by queueing their own next run (the `db_worker` runs them).

Django's tasks framework has no scheduler: a periodic task queues its next run when it
ends, and `migrate` (every deployment) starts the chain when no run is waiting. Only the
database backend can hold a run until its time; with another backend nothing is queued
(use cron and the task's management command then).
"""

from __future__ import annotations

import datetime

import structlog
from django.tasks import Task, TaskResultStatus

logger = structlog.get_logger("chatsite.chains")


def waiting_runs(task: Task) -> int | None:
    """Runs of `task` queued in the database backend, or None for another backend."""
    try:
        from django_tasks_db.backend import DatabaseBackend
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover - the database backend is a dependency
        return None
    if not isinstance(task.get_backend(), DatabaseBackend):
        return None
    return DBTaskResult.objects.filter(
        task_path=task.module_path, status=TaskResultStatus.READY
    ).count()


def queue_next(task: Task, run_after: datetime.datetime) -> bool:
    """Queue a run of `task` at `run_after` unless one is already waiting; True if queued."""
    waiting = waiting_runs(task)
    if waiting is None or waiting > 0:
        return False  # a backend that cannot defer would run it right now: use cron then
    task.using(run_after=run_after).enqueue()
    logger.info("task_scheduled", task=task.module_path, run_after=run_after.isoformat())
    return True
