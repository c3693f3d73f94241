"""The upload is checked whole before anything is stored, reserved or sent; every bad row
is reported by its line number."""

from __future__ import annotations

import pytest

from batches.models import BatchJob
from billing.models import Reservation
from tests.batches.conftest import jsonl, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def refused(response) -> str:
    assert response.status_code == 400
    assert not BatchJob.objects.exists()
    assert not Reservation.objects.exists()
    return response.content.decode()


def test_bad_jsonl_rows_are_reported_by_line_number_and_nothing_is_sent(logged_in, fake_api):
    data = (
        b'{"prompt": "fine"}\n'
        b'{"prompt": "no closing brace"\n'
        b"\n"
        b'{"messages": [{"role": "assistant", "content": "hi"}]}\n'
        b'{"prompt": "x", "colour": "red"}\n'
        b'{"prompt": "   "}\n'
        b'{"prompt": "ok", "max_tokens": 0}\n'
        b'{"custom_id": "has space", "prompt": "ok"}\n'
        b'["not", "an", "object"]\n'
        b'{"prompt": "fine again"}\n'
    )
    page = refused(upload(logged_in, data))
    assert "Line 2: is not valid JSON" in page
    assert "Line 4: the first message must be the user&#x27;s." in page
    assert "Line 5: unknown field &#x27;colour&#x27;" in page
    assert "Line 6: prompt is empty." in page
    assert "Line 7: max_tokens must be between 1 and 64,000." in page
    assert "Line 8: custom_id must be" in page
    assert "Line 9: must be a JSON object" in page
    assert "Line 1:" not in page and "Line 10:" not in page
    assert fake_api.batches.batches == {}


def test_bad_csv_rows_are_reported_by_their_line_in_the_file(logged_in):
    data = (
        b'custom_id,prompt,max_tokens\na,hello,\nb,"a prompt\nover two lines",lots\nc,,\na,dup,5\n'
    )
    page = refused(upload(logged_in, data, name="prompts.csv"))
    assert "Line 3: max_tokens &#x27;lots&#x27; is not a whole number." in page
    assert "Line 5: prompt is empty." in page
    assert "Line 6: custom_id &#x27;a&#x27; is already used on line 2." in page


def test_csv_needs_a_prompt_column(logged_in):
    page = refused(upload(logged_in, b"question\nwhat?\n", name="prompts.csv"))
    assert "Line 1: the CSV header has no &quot;prompt&quot; column." in page


def test_a_line_that_is_not_utf8_is_named(logged_in):
    page = refused(upload(logged_in, b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n'))
    assert "Line 2: is not UTF-8 text." in page


def test_size_and_row_limits(logged_in, settings):
    settings.BATCH_MAX_UPLOAD_BYTES = 100
    page = refused(upload(logged_in, jsonl(*({"prompt": "x" * 30} for _ in range(4)))))
    assert "the limit is 100." in page
    settings.BATCH_MAX_UPLOAD_BYTES = 10_000
    settings.BATCH_MAX_ROWS = 3
    page = refused(upload(logged_in, jsonl(*({"prompt": f"p{i}"} for i in range(4)))))
    assert "more than 3 rows" in page
    settings.MESSAGE_MAX_CHARS = 10
    page = refused(upload(logged_in, jsonl({"prompt": "short"}, {"prompt": "far too long"})))
    assert "Line 2: is 12 characters long; the limit is 10." in page


def test_an_empty_file_is_refused(logged_in):
    page = refused(upload(logged_in, b"\n  \n"))
    assert "The file has no rows." in page


def test_now_mode_refuses_big_jobs(logged_in, settings):
    settings.BATCH_NOW_MAX_ROWS = 2
    page = refused(upload(logged_in, jsonl(*({"prompt": f"p{i}"} for i in range(3))), mode="now"))
    assert "at most 2 distinct requests" in page


def test_a_model_that_is_not_enabled_is_refused(logged_in):
    page = refused(upload(logged_in, jsonl({"prompt": "hi"}), model="claude-made-up-9"))
    assert "Select a valid choice" in page
