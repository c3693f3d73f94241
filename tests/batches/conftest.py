"""Batch job tests: a fast fake API, uploads through the views, the worker run in-process."""

from __future__ import annotations

import io
import json
import time
import warnings

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from batches.models import BatchJob
from batches.scheduling import advance_job

MODEL = "claude-sonnet-4-6"


def ticks():
    """The batch worker's task rows (not other apps' tasks)."""
    return DBTaskResult.objects.filter(task_path=advance_job.module_path)


@pytest.fixture(autouse=True)
def fast_batches(settings, fake_api):
    """Batches end in milliseconds and the worker polls them as fast."""
    settings.BATCH_POLL_MIN_SECONDS = 0.02
    settings.BATCH_POLL_MAX_SECONDS = 0.2
    settings.BATCH_LEASE_SECONDS = 5.0
    default = fake_api.batch_seconds_per_request
    fake_api.configure(batch_seconds_per_request=0.01)
    yield fake_api
    fake_api.configure(batch_seconds_per_request=default)


def jsonl(*items: dict) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def form_data(data: bytes, *, name: str = "prompts.jsonl", **fields) -> dict:
    """The Batch jobs form as a browser fills it in."""
    file = io.BytesIO(data)
    file.name = name
    form = {"model": MODEL, "max_tokens": 200, "mode": "batch", "system_prompt": ""}
    return {**form, **fields, "file": file}


def upload(client, data: bytes, *, name: str = "prompts.jsonl", **fields):
    """POST the Batch jobs form."""
    return client.post("/batches/new/", form_data(data, name=name, **fields))


def submit(client, data: bytes, **fields) -> BatchJob:
    response = upload(client, data, **fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    return BatchJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))


def download(client, url: str) -> bytes:
    """A streamed download's body (the view streams an async iterator, as under daphne)."""
    response = client.get(url)
    assert response.status_code == 200
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "StreamingHttpResponse must consume asynchronous")
        return b"".join(response)


def run_due_tasks(limit: int = 1000) -> int:
    """Run the tasks that are due with django-tasks-db's own Worker.run_task, in this process
    (its loop's close_old_connections would end the test's transaction)."""
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    ran = 0
    while ran < limit:
        with transaction.atomic():
            task = ticks().ready().get_locked()
            if task is None:
                return ran
            task.claim(worker.worker_id)
        worker.run_task(task)
        ran += 1
    return ran


def run_worker(job: BatchJob, *, until=None, timeout: float = 30.0) -> BatchJob:
    """Run the worker in-process until the job ends (or `until(job)` holds), waiting only
    for the next tick's scheduled time."""
    deadline = time.monotonic() + timeout
    while True:
        run_due_tasks()
        job.refresh_from_db()
        if (until or (lambda j: j.is_finished))(job):
            return job
        failed = ticks().failed().first()
        assert failed is None, failed.traceback
        next_at = (
            ticks()
            .filter(status="READY")
            .order_by("run_after")
            .values_list("run_after", flat=True)
            .first()
        )
        assert next_at is not None, f"no tick scheduled for a job {job.status}"
        assert time.monotonic() < deadline, f"job still {job.status} after {timeout}s"
        wait = (next_at - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
