"""Message Batches: /v1/messages/batches.

Progress is computed lazily from the app clock on every read, no background task:
request ``i`` (0-based) of a batch created at ``t`` finishes at
``t + (i + 1) * batch_seconds_per_request``; the batch ends when the last one has.
As in the real API (see ``MessageBatch.request_counts``), requests are counted as
``processing`` until the whole batch ends, then move to succeeded/errored/canceled/expired;
``FakeAnthropic(batch_live_counts=True)`` moves each one as it finishes instead.

Per-request outcomes: a scripted reply queued with ``app.script()`` is consumed by each
request at creation (in order, while the queue lasts); a scripted ``status`` makes that
request ``errored`` with the matching error body. ``[[fake:batch_error]]`` in the last
user message -> errored (invalid_request_error), ``[[fake:batch_expire]]`` -> expired.
Cancelling at time ``c``: requests finished by ``c`` keep their outcome, the others become
``canceled``; the batch is ``canceling`` until ``c + batch_seconds_per_request``, then
``ended``. A batch still unfinished 24 h after creation ends with the rest ``expired``.
Results (JSONL) come in a shuffled order, usage with ``service_tier: "batch"``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .httputil import Send, dumps, error_body, make_id, rfc3339, send_bytes, send_error, send_json
from .messages import message_json, validate
from .scripting import ERROR_MESSAGES, Scripted, error_type_for, make_plan
from .tokens import input_tokens, last_user_text

if TYPE_CHECKING:
    from .app import FakeAnthropic

MAX_REQUESTS = 100_000
EXPIRY = 24 * 3600.0
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class _Request:
    custom_id: str
    params: dict[str, Any]
    script: Scripted | None
    outcome: str  # succeeded | errored | expired
    done_at: float
    msg_id: str = field(default_factory=lambda: make_id("msg"))


@dataclass
class Batch:
    id: str
    created: float  # app clock
    requests: list[_Request]
    cancel_at: float | None = None

    @property
    def natural_end(self) -> float:
        return self.requests[-1].done_at if self.requests else self.created

    def end_time(self, step: float) -> float:
        end = min(self.natural_end, self.created + EXPIRY)
        if self.cancel_at is not None:
            end = min(end, self.cancel_at + step)
        return end

    def status_of(self, req: _Request, now: float, step: float) -> str:
        """Status of one request at ``now``: processing or its final outcome."""
        end = self.end_time(step)
        if self.cancel_at is not None and req.done_at > self.cancel_at:
            final = "canceled"
        elif req.done_at > end:  # not reached before the 24 h expiry
            final = "expired"
        else:
            final = req.outcome
            if req.done_at <= now:
                return final
        return final if now >= end else "processing"


class BatchStore:
    def __init__(self, app: FakeAnthropic) -> None:
        self.app = app
        self.batches: dict[str, Batch] = {}

    def clear(self) -> None:
        self.batches.clear()

    @property
    def step(self) -> float:
        return self.app.batch_seconds_per_request

    def wall(self, clock_time: float) -> str:
        return rfc3339(self.app.wall_time(clock_time))

    def to_json(self, batch: Batch, base_url: str) -> dict[str, Any]:
        now = self.app.clock()
        end = batch.end_time(self.step)
        ended = now >= end
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if ended or self.app.batch_live_counts:
            for req in batch.requests:
                counts[batch.status_of(req, now, self.step)] += 1
        else:
            counts["processing"] = len(batch.requests)
        if ended:
            status = "ended"
        elif batch.cancel_at is not None:
            status = "canceling"
        else:
            status = "in_progress"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "ended_at": self.wall(end) if ended else None,
            "created_at": self.wall(batch.created),
            "expires_at": self.wall(batch.created + EXPIRY),
            "cancel_initiated_at": (
                self.wall(batch.cancel_at) if batch.cancel_at is not None else None
            ),
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def create(self, body: Any) -> Batch | str:
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return "requests: Field required"
        requests = body["requests"]
        if not requests:
            return "requests: List should have at least 1 item"
        if len(requests) > MAX_REQUESTS:
            return f"requests: List should have at most {MAX_REQUESTS} items"
        seen: set[str] = set()
        for i, item in enumerate(requests):
            if not isinstance(item, dict):
                return f"requests.{i}: Input should be a valid dictionary"
            cid = item.get("custom_id")
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                return f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"
            if cid in seen:
                return f"requests.{i}.custom_id: Duplicate custom_id {cid!r}"
            seen.add(cid)
            problem = validate(item.get("params"))
            if problem:
                return f"requests.{i}.params.{problem}"
        now = self.app.clock()
        reqs = []
        for i, item in enumerate(requests):
            params = item["params"]
            script = self.app.next_script()
            text = last_user_text(params)
            outcome = "succeeded"
            if "[[fake:batch_error]]" in text or (script and script.status):
                outcome = "errored"
            elif "[[fake:batch_expire]]" in text:
                outcome = "expired"
            done_at = now + (i + 1) * self.step
            reqs.append(_Request(item["custom_id"], params, script, outcome, done_at))
        batch = Batch(make_id("msgbatch"), now, reqs)
        self.batches[batch.id] = batch
        return batch

    def result_line(self, batch: Batch, req: _Request, status: str) -> bytes:
        result: dict[str, Any]
        if status == "succeeded":
            plan = make_plan(req.params, req.script)
            usage = {
                "input_tokens": input_tokens(req.params),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "service_tier": "batch",
            }
            message = message_json(req.msg_id, req.params["model"], plan, usage)
            result = {"type": "succeeded", "message": message}
        elif status == "errored":
            status_code = req.script.status if req.script and req.script.status else 400
            etype = (req.script and req.script.error_type) or error_type_for(status_code)
            msg = (req.script and req.script.error_message) or (
                "fake: batch_error directive" if status_code == 400 else ERROR_MESSAGES[etype]
            )
            result = {"type": "errored", "error": error_body(etype, msg, make_id("req"))}
        else:
            result = {"type": status}
        return dumps({"custom_id": req.custom_id, "result": result}) + b"\n"

    def results(self, batch: Batch) -> bytes:
        now = self.app.clock()
        lines = [
            self.result_line(batch, r, batch.status_of(r, now, self.step)) for r in batch.requests
        ]
        random.Random(batch.id).shuffle(lines)
        return b"".join(lines)

    def listing(self, query: str, base_url: str) -> dict[str, Any] | str:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            return "limit: Input should be a valid integer"
        if not 1 <= limit <= 1000:
            return "limit: Input should be between 1 and 1000"
        ids = sorted(self.batches, key=lambda b: self.batches[b].created, reverse=True)
        if "after_id" in params and params["after_id"] in ids:
            ids = ids[ids.index(params["after_id"]) + 1 :]
            page = ids[:limit]
        elif "before_id" in params and params["before_id"] in ids:
            ids = ids[: ids.index(params["before_id"])]
            page = ids[-limit:]
        else:
            page = ids[:limit]
        return {
            "data": [self.to_json(self.batches[i], base_url) for i in page],
            "has_more": len(ids) > len(page),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    async def handle(
        self, send: Send, method: str, rest: list[str], body: Any, query: str,
        base_url: str, request_id: str,
    ) -> None:  # fmt: skip
        if not rest:
            if method == "POST":
                created = self.create(body)
                if isinstance(created, str):
                    await send_error(send, 400, "invalid_request_error", created, request_id)
                else:
                    await send_json(send, 200, self.to_json(created, base_url), request_id)
                return
            if method == "GET":
                listing = self.listing(query, base_url)
                if isinstance(listing, str):
                    await send_error(send, 400, "invalid_request_error", listing, request_id)
                else:
                    await send_json(send, 200, listing, request_id)
                return
            await self._not_found(send, request_id)
            return
        batch = self.batches.get(rest[0])
        if batch is None:
            await send_error(
                send, 404, "not_found_error", f"Message batch {rest[0]!r} not found", request_id
            )
            return
        action = (method, rest[1] if len(rest) > 1 else None)
        ended = self.app.clock() >= batch.end_time(self.step)
        if action == ("GET", None):
            await send_json(send, 200, self.to_json(batch, base_url), request_id)
        elif action == ("POST", "cancel"):
            if not ended and batch.cancel_at is None:
                batch.cancel_at = self.app.clock()
            await send_json(send, 200, self.to_json(batch, base_url), request_id)
        elif action == ("DELETE", None):
            if not ended:
                msg = (
                    f"Batch {batch.id} cannot be deleted while it is in progress; cancel it first."
                )
                await send_error(send, 400, "invalid_request_error", msg, request_id)
                return
            del self.batches[batch.id]
            payload = {"id": batch.id, "type": "message_batch_deleted"}
            await send_json(send, 200, payload, request_id)
        elif action == ("GET", "results"):
            if not ended:
                msg = (
                    f"Batch {batch.id} has not finished processing; results are not available yet."
                )
                await send_error(send, 400, "invalid_request_error", msg, request_id)
                return
            headers = [
                (b"content-type", b"application/binary"),
                (b"request-id", request_id.encode()),
            ]
            await send_bytes(send, 200, self.results(batch), headers)
        else:
            await self._not_found(send, request_id)

    async def _not_found(self, send: Send, request_id: str) -> None:
        await send_error(send, 404, "not_found_error", "Not found", request_id)
