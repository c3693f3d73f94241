"""Batch jobs end to end: upload through the view, the worker in-process, the real SDK
against the fake API on loopback, results, ledger rows at the batch price."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from batches.models import BatchJob, JobResult, ProviderBatch
from billing.models import LedgerEntry, Reservation, UserMonth
from billing.pricing import cost_of
from tests.batches.conftest import MODEL, download, form_data, jsonl, run_worker, submit, upload

pytestmark = pytest.mark.django_db
MICRODOLLAR = Decimal("0.000001")


@pytest.fixture
def client_for(client, user):
    client.force_login(user)
    return client


def test_upload_submit_poll_results_and_ledger_at_half_price(client_for, user, fast_batches):
    prompts = [f"Tell me about topic number {i} please" for i in range(6)]
    job = submit(client_for, jsonl(*({"prompt": p} for p in prompts)))
    assert job.status == BatchJob.Status.QUEUED and job.request_count == 6

    job = run_worker(job)

    assert job.status == BatchJob.Status.COMPLETED
    assert len(fast_batches.batches.batches) == 1  # one Message Batch at the API
    results = {r.custom_id: r for r in JobResult.objects.filter(job=job)}
    assert len(results) == 6
    entries = {e.pk: e for e in LedgerEntry.objects.filter(user=user)}
    assert len(entries) == 6
    for result in results.values():
        assert result.kind == JobResult.Kind.SUCCEEDED
        entry = entries[result.ledger_entry_id]
        assert entry.purpose == "batch" and entry.batch and entry.status == "complete"
        usage = {"input_tokens": entry.input_tokens, "output_tokens": entry.output_tokens}
        list_price = cost_of(model=MODEL, usage=usage)
        assert entry.cost == result.cost == cost_of(model=MODEL, usage=usage, batch=True)
        assert abs(entry.cost - list_price / 2) <= MICRODOLLAR  # half the list price
        assert entry.input_tokens > 0 and entry.output_tokens > 0
    # The results came back shuffled; each row still got the answer to its own prompt.
    body = download(client_for, f"/batches/{job.pk}/results.jsonl")
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"row-{i}" for i in range(1, 7)]
    for line, prompt in zip(lines, prompts, strict=True):
        assert line["status"] == "succeeded"
        assert f"Re: {prompt}" in line["text"]
    # The whole hold is gone: settled per result, the rest released.
    assert not Reservation.objects.exists()
    month = UserMonth.objects.get(user=user)
    assert month.reserved == 0
    assert month.spent == sum(r.cost for r in results.values())


def test_more_than_the_split_size_goes_as_several_batches(client_for, settings, fast_batches):
    settings.BATCH_SPLIT_SIZE = 3
    job = submit(client_for, jsonl(*({"prompt": f"question {i}"} for i in range(7))))
    assert [b.size for b in job.provider_batches.all()] == [3, 3, 1]

    job = run_worker(job)

    assert job.status == BatchJob.Status.COMPLETED
    at_api = fast_batches.batches.batches.values()
    assert sorted(len(b.requests) for b in at_api) == [1, 3, 3]
    assert {b.provider_id for b in job.provider_batches.all()} == {b.id for b in at_api}
    sent = [r.custom_id for b in at_api for r in b.requests]
    assert len(sent) == len(set(sent)) == 7
    assert JobResult.objects.filter(job=job, kind="succeeded").count() == 7


def test_identical_requests_are_sent_once_and_their_result_reused(client_for, user, fast_batches):
    rows = [
        {"prompt": "same question"},
        {"prompt": "other question"},
        {"prompt": "same question"},
        {"messages": [{"role": "user", "content": "same question"}]},  # the same request
        {"prompt": "same question", "max_tokens": 50},  # different: its own max_tokens
    ]
    job = submit(client_for, jsonl(*rows))
    assert (job.row_count, job.request_count) == (5, 3)

    job = run_worker(job)

    (batch,) = fast_batches.batches.batches.values()
    assert len(batch.requests) == 3
    assert LedgerEntry.objects.filter(user=user).count() == 3
    lines = [json.loads(x) for x in download(client_for, f"/batches/{job.pk}/results.jsonl")
             .splitlines()]  # fmt: skip
    assert [line["status"] for line in lines] == ["succeeded"] * 5
    assert lines[2]["text"] == lines[3]["text"] == lines[0]["text"]
    assert [line["same_as"] for line in lines] == [None, None, "row-1", "row-1", None]
    assert lines[2]["cost_usd"] is None and lines[0]["cost_usd"] is not None


def test_errored_and_expired_requests(client_for, user, fast_batches):
    job = submit(
        client_for,
        jsonl(
            {"custom_id": "ok", "prompt": "a normal question"},
            {"custom_id": "bad", "prompt": "this one fails [[fake:batch_error]]"},
            {"custom_id": "late", "prompt": "this one expires [[fake:batch_expire]]"},
        ),
    )
    job = run_worker(job)

    assert job.status == BatchJob.Status.COMPLETED
    kinds = {row.custom_id: row.request.result for row in job.rows.select_related("request")}
    assert kinds["ok"].kind == "succeeded"
    assert kinds["bad"].kind == "errored"
    assert kinds["bad"].error_type == "invalid_request_error"
    assert kinds["late"].kind == "expired"
    # The errored call is on the ledger at no cost; the expired one was never processed.
    entries = LedgerEntry.objects.filter(user=user)
    assert sorted(e.status for e in entries) == ["complete", "failed"]
    failed = entries.get(status="failed")
    assert failed.cost == 0 and failed.error_kind == "invalid_request_error"
    assert kinds["late"].ledger_entry_id is None
    assert not Reservation.objects.exists()
    assert UserMonth.objects.get(user=user).reserved == 0
    csv_text = download(client_for, f"/batches/{job.pk}/results.csv").decode()
    assert "bad,3,errored" not in csv_text and ",errored," in csv_text
    assert ",expired," in csv_text


def test_cancel_cancels_what_is_pending_and_releases_the_hold(client_for, user, fast_batches):
    fast_batches.configure(batch_seconds_per_request=0.5)  # ~3 s to end: time to cancel
    job = submit(client_for, jsonl(*({"prompt": f"slow {i}"} for i in range(6))))
    assert UserMonth.objects.get(user=user).reserved == job.reserved_usd > 0
    job = run_worker(job, until=lambda j: j.provider_batches.filter(state="in_progress").exists())

    response = client_for.post(f"/batches/{job.pk}/cancel/")
    assert response.status_code == 302
    job = run_worker(job)

    assert job.status == BatchJob.Status.CANCELED
    (batch,) = fast_batches.batches.batches.values()
    assert batch.cancel_at is not None  # cancelled at the API
    kinds = list(JobResult.objects.filter(job=job).values_list("kind", flat=True))
    assert len(kinds) == 6 and "canceled" in kinds
    assert not Reservation.objects.exists()
    month = UserMonth.objects.get(user=user)
    assert month.reserved == 0
    assert month.spent == sum(r.cost or 0 for r in JobResult.objects.filter(job=job))
    page = client_for.get(f"/batches/{job.pk}/").content.decode()
    assert 'id="cancel-job"' not in page and "Canceled" in page


def test_cancel_before_submission_sends_nothing(client_for, user, fast_batches):
    job = submit(client_for, jsonl({"prompt": "one"}, {"prompt": "two"}))
    client_for.post(f"/batches/{job.pk}/cancel/")
    job = run_worker(job)

    assert job.status == BatchJob.Status.CANCELED
    assert fast_batches.batches.batches == {}
    assert set(JobResult.objects.filter(job=job).values_list("kind", flat=True)) == {"canceled"}
    assert not LedgerEntry.objects.exists() and not Reservation.objects.exists()
    assert UserMonth.objects.get(user=user).reserved == 0


def test_budget_refusal_before_anything_is_sent(client_for, user, settings, fast_batches):
    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.01")
    # 20 rows x 2,000 max tokens of Sonnet output at $7.50/M (batch) = $0.30 worst case
    response = upload(client_for, jsonl(*({"prompt": f"q{i}"} for i in range(20))),
                      max_tokens=2000)  # fmt: skip

    assert response.status_code == 400
    page = response.content.decode()
    assert "This request could cost up to $0.30" in page and "monthly budget" in page
    assert not BatchJob.objects.exists() and not Reservation.objects.exists()
    assert fast_batches.batches.batches == {}
    # A job that fits is held whole before it is sent.
    job = submit(client_for, jsonl({"prompt": "small"}), max_tokens=100)
    assert UserMonth.objects.get(user=user).reserved == job.reserved_usd > 0


@pytest.mark.django_db(transaction=True)
async def test_a_submission_counts_against_the_rate_limits(async_client, user, settings):
    """Through the ASGI handler, as under daphne: both posts share one event loop's limiter."""
    settings.RATE_LIMIT_USER_REQUESTS = "1/hour"  # exact unless a new window begins mid-test
    await async_client.aforce_login(user)
    first = await async_client.post("/batches/new/", form_data(jsonl({"prompt": "first"})))
    assert first.status_code == 302
    second = await async_client.post("/batches/new/", form_data(jsonl({"prompt": "second"})))
    assert second.status_code == 400
    assert "You are sending too many requests right now" in second.content.decode()
    assert await BatchJob.objects.acount() == 1
    assert await Reservation.objects.acount() == 1  # only the first job's hold
    await sync_to_async(connections.close_all)()


def test_now_mode_calls_concurrently_within_the_limit_at_full_price(
    client_for, user, settings, fast_batches
):
    settings.BATCH_NOW_CONCURRENCY = 2
    fast_batches.script(*({"text": f"answer {i}", "ttft": 0.3} for i in range(4)))
    job = submit(client_for, jsonl(*({"prompt": f"now {i}"} for i in range(4))), mode="now")

    job = run_worker(job)

    assert job.status == BatchJob.Status.COMPLETED
    assert fast_batches.batches.batches == {}  # direct calls, no Message Batch
    arrivals = sorted(r["time"] for r in fast_batches.requests)
    assert len(arrivals) == 4
    assert arrivals[1] - arrivals[0] < 0.25  # two at once...
    assert arrivals[2] - arrivals[0] >= 0.25  # ...the third waits for a free slot
    texts = set(JobResult.objects.filter(job=job).values_list("text", flat=True))
    assert texts == {f"answer {i}" for i in range(4)}
    for entry in LedgerEntry.objects.filter(user=user):
        assert entry.purpose == "bulk" and not entry.batch
        usage = {"input_tokens": entry.input_tokens, "output_tokens": entry.output_tokens}
        assert entry.cost == cost_of(model=MODEL, usage=usage) > 0
    assert not Reservation.objects.exists()


def test_a_crash_between_submit_and_save_adopts_the_batch_instead_of_resending(
    client_for, fast_batches
):
    """The worker sent the batch, then died before saving its id: no second batch."""
    import anthropic
    from asgiref.sync import async_to_sync
    from django.conf import settings
    from django.utils import timezone

    job = submit(client_for, jsonl(*({"prompt": f"crash {i}"} for i in range(3))))
    chunk = job.provider_batches.get()
    chunk.state, chunk.submit_started_at = ProviderBatch.State.SUBMITTING, timezone.now()
    chunk.save()
    wire = [{"custom_id": r.custom_id, "params": r.params} for r in job.requests.order_by("pk")]

    async def send_as_the_crashed_worker() -> str:
        async with anthropic.AsyncAnthropic(
            api_key=settings.ANTHROPIC_API_KEY, base_url=settings.ANTHROPIC_BASE_URL
        ) as client:
            return (await client.messages.batches.create(requests=wire)).id

    sent_id = async_to_sync(send_as_the_crashed_worker)()

    job = run_worker(job)

    assert job.status == BatchJob.Status.COMPLETED
    assert list(fast_batches.batches.batches) == [sent_id]
    assert job.provider_batches.get().provider_id == sent_id
    assert JobResult.objects.filter(job=job, kind="succeeded").count() == 3


def test_a_now_request_over_the_token_rate_limit_alone_is_not_sent(
    client_for, settings, fast_batches
):
    settings.RATE_LIMIT_USER_TOKENS = "300/minute"
    job = submit(client_for, jsonl({"prompt": "fits"}, {"prompt": "x" * 200}), mode="now",
                 max_tokens=100)  # fmt: skip
    job = run_worker(job)

    assert job.status == BatchJob.Status.COMPLETED
    assert len(fast_batches.requests) == 1  # only the request that fits was sent
    late = job.rows.get(line=2).request.result
    assert late.kind == "errored" and late.error_type == "rate_limited"
    assert late.ledger_entry_id is None
