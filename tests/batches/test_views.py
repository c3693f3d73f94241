"""The Batch jobs pages: who may see what, the live progress fragment, the downloads."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from batches.models import BatchJob
from tests.batches.conftest import download, jsonl, run_worker, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(client, user, fast_batches):
    client.force_login(user)
    fast_batches.script({"text": '=HYPERLINK("http://evil.example")'}, "plain answer")
    job = submit(client, jsonl({"prompt": "first"}, {"prompt": "second"}), name="mine.jsonl")
    client.logout()
    return job


def test_anonymous_users_are_sent_to_log_in(client, job):
    for url in ("/batches/", f"/batches/{job.pk}/", f"/batches/{job.pk}/results.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_another_user_cannot_see_download_or_cancel_a_job(client, other_user, job):
    client.force_login(other_user)
    for url in (f"/batches/{job.pk}/", f"/batches/{job.pk}/results.jsonl",
                f"/batches/{job.pk}/results.csv"):  # fmt: skip
        assert client.get(url).status_code == 404
    assert client.post(f"/batches/{job.pk}/cancel/").status_code == 404
    job.refresh_from_db()
    assert not job.cancel_requested
    assert "mine.jsonl" not in client.get("/batches/").content.decode()


def test_the_page_polls_its_progress_fragment_until_the_job_ends(client, user, job):
    client.force_login(user)
    page = client.get(f"/batches/{job.pk}/").content.decode()
    assert "<h1>mine.jsonl</h1>" in page and 'hx-trigger="every 2s"' in page
    assert 'id="count-waiting">2<' in page

    fragment = client.get(f"/batches/{job.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<section id="progress"') and "<h1>" not in fragment

    run_worker(job)
    fragment = client.get(f"/batches/{job.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="count-succeeded">2<' in fragment
    assert "hx-trigger" not in fragment  # finished: the polling stops
    assert 'id="job-cost">$0.0' in fragment
    assert "mine.jsonl" in client.get("/batches/").content.decode()


def test_csv_download_cannot_inject_a_spreadsheet_formula(client, user, job):
    client.force_login(user)
    run_worker(job)
    rows = list(csv.DictReader(io.StringIO(download(client, f"/batches/{job.pk}/results.csv")
                                           .decode())))  # fmt: skip
    assert [r["custom_id"] for r in rows] == ["row-1", "row-2"]
    assert rows[0]["text"] == '\'=HYPERLINK("http://evil.example")'
    assert rows[1]["text"] == "plain answer"
    assert BatchJob.objects.get(pk=job.pk).status == "completed"


def test_a_job_nobody_picks_up_says_the_worker_is_missing(client, user, job):
    client.force_login(user)
    assert (
        "Waiting for the background worker"
        not in client.get(f"/batches/{job.pk}/").content.decode()
    )
    BatchJob.objects.filter(pk=job.pk).update(created_at=job.created_at - dt.timedelta(minutes=2))
    page = client.get(f"/batches/{job.pk}/").content.decode()
    assert "Waiting for the background worker" in page and "db_worker" in page
