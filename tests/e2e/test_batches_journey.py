"""A person uploads a CSV of prompts, watches the job progress live and downloads results.

The real background worker (`manage.py db_worker`) runs beside daphne on the test database.
"""

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, UserFactory
from tests.servers import start_db_worker, stop

PROMPTS = ["What is a haiku?", "Name a prime number", "Why is the sky blue?",
           "What is a haiku?", "Explain =SUM(A1:A3)"]  # fmt: skip


@pytest.fixture
def worker(app_url, fake_api, tmp_path):
    process = start_db_worker(
        fake_base_url=fake_api.base_url,
        name="e2e",
        log_path=tmp_path / "worker.log",
        BATCH_POLL_MIN_SECONDS="0.2",
        BATCH_POLL_MAX_SECONDS="0.5",
    )
    default = fake_api.batch_seconds_per_request
    yield process
    stop(process)
    fake_api.configure(batch_seconds_per_request=default)


def test_upload_csv_watch_progress_and_download_results(page: Page, app_url, fake_api, worker):
    fake_api.configure(batch_seconds_per_request=0.5)  # about 2 s: long enough to watch
    UserFactory(username="grace")
    page.goto(f"{app_url}/accounts/login/")
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Batch jobs").click()
    expect(page.get_by_role("heading", name="Batch jobs")).to_be_visible()

    body = "prompt\n" + "".join(f'"{p}"\n' for p in PROMPTS)
    page.get_by_label("Prompts file").set_input_files(
        {"name": "questions.csv", "mimeType": "text/csv", "buffer": body.encode()}
    )
    page.get_by_label("Longest reply (tokens)").fill("300")
    page.get_by_label("Message Batches").check()
    page.get_by_role("button", name="Check and submit").click()

    expect(page).to_have_url(re.compile(r"/batches/\d+/$"))
    expect(page.get_by_role("heading", name="questions.csv")).to_be_visible()
    page.evaluate("window.__samePage = true")  # gone if the page were reloaded
    expect(page.locator("#count-processing")).to_have_text("5", timeout=15_000)
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=30_000)
    expect(page.locator("#count-succeeded")).to_have_text("5")
    expect(page.locator("#job-cost")).to_have_text(re.compile(r"^\$0\.\d+$"))
    assert page.evaluate("window.__samePage") is True  # updated in place by htmx polling
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)

    with page.expect_download() as info:
        page.locator("#download-csv").click()
    assert info.value.suggested_filename.endswith("-results.csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert [r["custom_id"] for r in rows] == [f"row-{n}" for n in range(2, 7)]
    assert {r["status"] for r in rows} == {"succeeded"}
    for row, prompt in zip(rows, PROMPTS, strict=True):
        assert prompt.lstrip("=") in row["text"]
    assert rows[3]["same_as"] == "row-2" and rows[3]["text"] == rows[0]["text"]
