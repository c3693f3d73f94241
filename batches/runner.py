"""One step of a job's work, for the worker's tick (see scheduling.py)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.utils import timezone

from batches import batchmode, nowmode
from batches.models import BatchJob
from conversations.claude.client import build_client


async def run_step(job_id: int) -> float | None:
    """Advance the job; return seconds until the next step, or None once it has ended."""
    job = await sync_to_async(_begin)(job_id)
    if job.is_finished:
        return None
    async with build_client() as client:
        if job.is_batch:
            return await batchmode.step(job, client)
        return await nowmode.step(job, client)


def _begin(job_id: int) -> BatchJob:
    """Mark the job running (or canceling) as its first step, or the first after a cancel."""
    job = BatchJob.objects.get(pk=job_id)
    changes = {}
    if job.status == BatchJob.Status.QUEUED:
        changes = {"status": BatchJob.Status.RUNNING, "started_at": timezone.now()}
    if job.cancel_requested and not job.is_finished:
        changes["status"] = BatchJob.Status.CANCELING
    if changes:
        BatchJob.objects.filter(pk=job.pk).update(**changes)
        for name, value in changes.items():
            setattr(job, name, value)
    return job
