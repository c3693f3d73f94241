"""Message Batches through client.messages.batches, on both transports.

The ``app`` fixture processes one batch request per (fake-clock) second.
"""

from __future__ import annotations

from datetime import timedelta

import anthropic
import pytest

from fakeanthropic import Scripted, demo_reply

from .conftest import MODEL, user


def req(custom_id: str, prompt: str) -> dict:
    return {
        "custom_id": custom_id,
        "params": {"model": MODEL, "max_tokens": 300, "messages": [user(prompt)]},
    }


async def results_by_id(client, batch_id: str) -> dict:
    out = {}
    async for line in await client.messages.batches.results(batch_id):
        out[line.custom_id] = line.result
    return out


async def test_create_poll_results(client, clock):
    batch = await client.messages.batches.create(
        requests=[
            req("ok-1", "first prompt"),
            req("bad-2", "this one fails [[fake:batch_error]]"),
            req("late-3", "this one expires [[fake:batch_expire]]"),
            req("ok-4", "fourth prompt"),
        ]
    )
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 4
    assert batch.results_url is None and batch.ended_at is None
    assert batch.expires_at - batch.created_at == timedelta(hours=24)

    clock.advance(2.5)  # half done: counted as processing until the batch ends (real API)
    mid = await client.messages.batches.retrieve(batch.id)
    assert mid.processing_status == "in_progress"
    assert mid.request_counts.processing == 4

    clock.advance(2)
    done = await client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.expired) == (0, 2, 1, 1)
    assert done.ended_at is not None and done.ended_at > done.created_at
    assert done.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")

    results = await results_by_id(client, batch.id)
    assert set(results) == {"ok-1", "bad-2", "late-3", "ok-4"}
    ok = results["ok-1"]
    assert ok.type == "succeeded"
    assert ok.message.content[0].text == demo_reply("first prompt")
    assert ok.message.usage.service_tier == "batch"
    assert ok.message.usage.input_tokens > 0
    assert results["bad-2"].type == "errored"
    assert results["bad-2"].error.error.type == "invalid_request_error"
    assert results["late-3"].type == "expired"


async def test_results_come_shuffled(client, clock):
    ids = [f"r{i:02d}" for i in range(12)]
    batch = await client.messages.batches.create(requests=[req(i, f"prompt {i}") for i in ids])
    clock.advance(13)
    order = [line.custom_id async for line in await client.messages.batches.results(batch.id)]
    assert sorted(order) == ids and order != ids


async def test_results_before_end_are_refused(client):
    batch = await client.messages.batches.create(requests=[req("a", "x")])
    with pytest.raises(anthropic.AnthropicError):
        await client.messages.batches.results(batch.id)


async def test_cancel(client, clock):
    batch = await client.messages.batches.create(
        requests=[req(f"c{i}", f"prompt {i}") for i in range(5)]
    )
    clock.advance(2.5)  # c0, c1 finished
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    clock.advance(1.0)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 2 and ended.request_counts.canceled == 3
    results = await results_by_id(client, batch.id)
    assert [results[f"c{i}"].type for i in range(5)] == ["succeeded"] * 2 + ["canceled"] * 3


async def test_delete_only_when_ended(client, clock):
    batch = await client.messages.batches.create(requests=[req("a", "x")])
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.delete(batch.id)
    clock.advance(2)
    deleted = await client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(batch.id)


async def test_list_paginates_newest_first(client, clock):
    made = []
    for i in range(3):
        made.append((await client.messages.batches.create(requests=[req("a", str(i))])).id)
        clock.advance(0.1)
    page = await client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == made[::-1][:2]
    assert page.has_more is True and page.first_id == made[2] and page.last_id == made[1]
    every = [b.id async for b in await client.messages.batches.list(limit=2)]
    assert every == made[::-1]


async def test_create_validation(client):
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.batches.create(requests=[req("dup", "x"), req("dup", "y")])
    assert "Duplicate custom_id" in info.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.create(requests=[req("bad id!", "x")])
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.create(
            requests=[{"custom_id": "x", "params": {"model": MODEL, "messages": []}}]
        )


async def test_scripted_replies_and_live_counts(client, app, clock):
    app.batch_live_counts = True
    app.script("scripted answer", Scripted(status=500))
    batch = await client.messages.batches.create(
        requests=[req("s1", "a"), req("s2", "b"), req("s3", "c")]
    )
    clock.advance(1.5)
    mid = await client.messages.batches.retrieve(batch.id)
    assert mid.request_counts.succeeded == 1 and mid.request_counts.processing == 2
    clock.advance(2)
    results = await results_by_id(client, batch.id)
    assert results["s1"].message.content[0].text == "scripted answer"
    assert results["s2"].type == "errored" and results["s2"].error.error.type == "api_error"
    assert results["s3"].message.content[0].text == demo_reply("c")


async def test_unfinished_requests_expire_after_24h(client, app, clock):
    app.batch_seconds_per_request = 30_000.0  # 3 requests need 25 h
    batch = await client.messages.batches.create(
        requests=[req("e1", "a"), req("e2", "b"), req("e3", "c")]
    )
    clock.advance(24 * 3600 + 1)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 2 and ended.request_counts.expired == 1
