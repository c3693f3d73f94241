"""The real `manage.py db_worker` in a subprocess on the test database: SIGKILL it in the
middle of a job, start it again, and the job completes with nothing lost or doubled."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
from django.db.models import Sum

from batches.models import BatchJob, JobResult
from billing.models import LedgerEntry, Reservation, UserMonth
from tests import servers
from tests.batches.conftest import jsonl, submit, ticks

pytestmark = pytest.mark.django_db(transaction=True)
LEASE_SECONDS = 2


@pytest.fixture
def worker(fake_api, tmp_path):
    """Start db_worker processes on the test database; kill what is left at the end."""
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        process = servers.start_db_worker(
            fake_base_url=fake_api.base_url,
            name=name,
            log_path=tmp_path / f"{name}.log",
            BATCH_POLL_MIN_SECONDS="0.05",
            BATCH_POLL_MAX_SECONDS="0.2",
            BATCH_LEASE_SECONDS=str(LEASE_SECONDS),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_for(condition, *, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_completed_exactly_once(job: BatchJob, user, fake_api, rows: int) -> None:
    job.refresh_from_db()
    assert job.status == BatchJob.Status.COMPLETED
    assert len(fake_api.batches.batches) == 1  # submitted once, never again
    results = JobResult.objects.filter(job=job)
    assert results.count() == rows
    assert Counter(results.values_list("kind", flat=True)) == {"succeeded": rows}
    entries = LedgerEntry.objects.filter(user=user)
    assert entries.count() == rows  # one charge per result, none twice
    assert set(results.values_list("ledger_entry_id", flat=True)) == set(
        entries.values_list("pk", flat=True)
    )
    month = UserMonth.objects.get(user=user)
    assert month.reserved == 0 and not Reservation.objects.exists()
    assert month.spent == entries.aggregate(total=Sum("cost"))["total"] > 0


def test_worker_killed_mid_poll_and_restarted_completes_the_job(client, user, fake_api, worker):
    fake_api.configure(batch_seconds_per_request=0.05)  # 40 requests: about 2 s
    client.force_login(user)
    job = submit(client, jsonl(*({"prompt": f"poll {i}"} for i in range(40))))
    first = worker("first")
    chunk = job.provider_batches.get()

    def polled() -> bool:
        chunk.refresh_from_db()
        return chunk.processing_status == "in_progress"

    wait_for(polled, what="the batch to be submitted and polled")
    kill(first)
    assert JobResult.objects.filter(job=job).count() == 0  # it died before any result

    worker("second")
    wait_for(lambda: BatchJob.objects.get(pk=job.pk).is_finished, what="the job to end")
    assert_completed_exactly_once(job, user, fake_api, rows=40)


def test_worker_killed_mid_ingest_resumes_from_the_watchdog_tick(client, user, fake_api, worker):
    fake_api.configure(batch_seconds_per_request=0.001)
    client.force_login(user)
    job = submit(client, jsonl(*({"prompt": f"ingest {i}"} for i in range(500))))
    first = worker("first")

    def part_stored() -> bool:
        return 0 < JobResult.objects.filter(job=job).count() < 500

    wait_for(part_stored, what="some results to be stored")
    kill(first)
    stored = JobResult.objects.filter(job=job).count()
    assert 0 < stored < 500
    # It died inside a tick: that task row stays RUNNING forever...
    assert ticks().filter(status="RUNNING", worker_ids__contains=["first"]).exists()

    worker("second")
    wait_for(lambda: BatchJob.objects.get(pk=job.pk).is_finished, what="the job to end")
    # ...and the watchdog it had queued took over once the lease ran out.
    assert_completed_exactly_once(job, user, fake_api, rows=500)
