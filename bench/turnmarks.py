"""daphne with timing marks on each turn's way to its first frame: `BENCH_WRAP=bench/turnmarks.py`.

    BENCH_WRAP=bench/turnmarks.py python -m bench --only load --quick

Each chat message the app receives gets a record (a context variable, so the ORM thread and
the reply's tasks write to the same one): received by the consumer, rate limits checked,
the turn's ORM call started and ended in its thread, back on the loop, the request's body
made (the request leaves right after), the first text delta read, its frame handed to the
socket; then the reply's end: its last delta frame, its save and settlement (the ORM call)
started and ended, its final frame handed to the socket. When daphne exits,
bench/results/turnmarks-app.json (ignored by git) gets each segment's percentiles over the
turns of the last served run whose records are complete (warm-up included: a load's first
turns are a small share), and the records themselves.
The clock is `time.perf_counter` (CLOCK_MONOTONIC, the same in every process), so a load
client's own timestamps line up with these.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the project (daphne runs from it)

RESULTS = Path(__file__).resolve().parent / "results"
_record: contextvars.ContextVar[dict | None] = contextvars.ContextVar("turn", default=None)
_records: list[dict] = []
clock = time.perf_counter
SEGMENTS = (  # name, from, to
    ("received to limits checked", "received", "limits"),
    ("limits to the ORM thread", "limits", "orm"),
    ("the turn's ORM call", "orm", "orm_end"),
    ("back on the loop", "orm_end", "back"),
    ("to the request's body", "back", "request"),
    ("received to the request", "received", "request"),
    ("first delta to its frame", "delta", "frame_start"),
    ("last delta frame to the reply's save started", "last_frame", "finish"),
    ("the reply's save and settlement (ORM call)", "finish", "finish_end"),
    ("saved to the final frame", "finish_end", "final_frame"),
    ("last delta frame to the final frame", "last_frame", "final_frame"),
)


def _marked(name: str, function, *, once: bool = False):
    @functools.wraps(function)
    def marked(*args, **kwargs):
        record = _record.get()
        if record is not None and not (once and name in record):
            record[name] = clock()
        try:
            return function(*args, **kwargs)
        finally:
            if record is not None and not once:
                record[f"{name}_end"] = clock()

    return marked


def install() -> None:
    from conversations import consumers, tabs, turns
    from conversations.claude import streaming

    receive = consumers.ConversationConsumer.receive

    async def received(self, text_data=None, bytes_data=None):
        record = {"received": clock(), "conversation": self.scope["url_route"]["kwargs"]}
        _records.append(record)
        _record.set(record)
        return await receive(self, text_data, bytes_data)

    consumers.ConversationConsumer.receive = received
    turns._create_turn = _marked("orm", turns._create_turn)
    turns._finish_and_log = _marked("finish", turns._finish_and_log)
    turns._start = _marked("back", turns._start, once=True)
    streaming.ReplyRequest.body = _marked("request", streaming.ReplyRequest.body, once=True)
    streaming.DeltaRelay.push = _marked("delta", streaming.DeltaRelay.push, once=True)

    check_limits = turns._check_limits

    async def limits(**kwargs):
        try:
            return await check_limits(**kwargs)
        finally:
            if (record := _record.get()) is not None:
                record["limits"] = clock()

    turns._check_limits = limits
    deliver = tabs.deliver

    async def delivered(conversation_id, event):
        record = _record.get()
        if record is not None and event["type"] == "reply.delta":
            record.setdefault("frame_start", clock())
            record["last_frame"] = clock()  # the latest so far
        await deliver(conversation_id, event)
        if record is not None and event["type"] == "reply.finished":
            record["final_frame"] = clock()

    tabs.deliver = delivered


def write() -> Path:
    from bench.harness import summary

    complete = [r for r in _records if all(key in r for _, a, b in SEGMENTS for key in (a, b))]
    out = RESULTS / "turnmarks-app.json"
    out.write_text(
        json.dumps(
            {
                "turns": len(complete),
                "ms": {
                    name: summary([(r[b] - r[a]) * 1000 for r in complete])
                    for name, a, b in SEGMENTS
                },
                "records": complete,
            },
            indent=0,
        )
    )
    return out


if __name__ == "__main__":
    import django
    from daphne.cli import CommandLineInterface

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    django.setup()
    install()
    sys.argv = ["daphne", *sys.argv[1:]]
    try:
        CommandLineInterface.entrypoint()
    finally:
        if "bare_relay" not in sys.argv[-1]:
            write()
