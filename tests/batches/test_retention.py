"""Retention reaches batch jobs: a job finished before the cutoff keeps its counts, costs and
ledger rows, and loses its prompts, system prompt and answers."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from batches.models import BatchJob, JobRequest, JobResult
from billing.models import LedgerEntry
from conversations import retention
from tests.batches.conftest import download, jsonl, run_worker, submit

pytestmark = pytest.mark.django_db


def test_a_job_finished_before_the_cutoff_loses_its_text_not_its_numbers(client, user):
    client.force_login(user)
    old = run_worker(submit(client, jsonl({"prompt": "my secret plan"}), system_prompt="Be terse."))
    recent = run_worker(submit(client, jsonl({"prompt": "my other plan"})))
    assert old.status == recent.status == BatchJob.Status.COMPLETED
    BatchJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - dt.timedelta(days=40))
    ledger = list(LedgerEntry.objects.order_by("pk").values())
    counts = list(JobResult.objects.order_by("pk").values("input_tokens", "output_tokens", "cost"))

    report = retention.purge_old_messages(days=30)

    assert report.batch_jobs_purged == 1
    old.refresh_from_db()
    assert old.system_prompt == "" and old.request_count == 1
    assert JobRequest.objects.get(job=old).params == {}
    assert JobResult.objects.get(job=old).text == ""
    [line] = download(client, f"/batches/{old.pk}/results.jsonl").splitlines()
    assert "secret" not in line.decode() and json.loads(line)["status"] == "succeeded"
    assert "my other plan" in JobRequest.objects.get(job=recent).params["messages"][0]["content"]
    assert JobResult.objects.get(job=recent).text
    assert list(LedgerEntry.objects.order_by("pk").values()) == ledger
    assert (
        list(JobResult.objects.order_by("pk").values("input_tokens", "output_tokens", "cost"))
        == counts
    )
    assert retention.purge_old_messages(days=30).batch_jobs_purged == 0  # nothing left
