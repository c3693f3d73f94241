"""Queries and server time of one chat turn against the length of the history.

In this process: the real ASGI application driven by channels' WebsocketCommunicator, the
real SDK calling the fake API served on loopback (a thread of this process). For each N and
repetition a conversation gets N - 2 earlier messages (bulk insert; all of them first, then
VACUUM ANALYZE), then one warm-up turn (it sets the context start and learns the prompt
overhead, as any earlier turn of a real conversation would), so the measured turn has
exactly N earlier messages. The lengths take turns (10, 100, 1,000, 10,000, 10, ...), so
the machine's drift during a run weighs on each alike.

- queries_per_turn.hN: chatsite.db.QueryLog, the queries of every thread (the turn's ORM
  calls run on a pool of threads, chatsite.db.orm), from the message
  sent to the reply's final frame (socket connect excluded).
- turn_ms.hN: from sending the message to the reply's row saved (the ORM call that saves
  and settles it returned), minus the upstream's own time (the fake API's span from
  receiving the request to its last byte, timed by an ASGI wrapper in the same process).
  Median of the repetitions.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections

from bench import data
from bench.clients import prompt
from bench.harness import API_KEY, summary
from chatsite.db import QueryLog
from fakeanthropic import FakeAnthropic
from fakeanthropic.server import aserving

LENGTHS = (10, 100, 1000, 10000)
REPLY_TOKENS = 20


class TimedUpstream:
    """ASGI wrapper recording each /v1/messages span (first call to last byte sent)."""

    def __init__(self, app) -> None:
        self.app = app
        self.spans: list[tuple[float, float]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/messages":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.spans.append((start, time.perf_counter()))

        await self.app(scope, receive, timed)


class SavedReplies:
    """When each finished reply was saved: the ORM call that saves and settles it
    (`conversations.turns._finish_and_log`, wrapped) returned, its transaction committed.
    (Until 2026-12-07 the reply's own save(), timed by post_save; the save now goes in a
    batch with the settlement.)"""

    def __init__(self) -> None:
        self.saved: dict[int, float] = {}
        self._original = None

    def install(self) -> SavedReplies:
        from conversations import turns

        original = self._original = turns._finish_and_log

        def timed(conversation, reply, *args, **kwargs):
            try:
                return original(conversation, reply, *args, **kwargs)
            finally:
                self.saved[reply.pk] = time.perf_counter()

        turns._finish_and_log = timed
        return self

    def remove(self) -> None:
        from conversations import turns

        turns._finish_and_log = self._original


async def _open(application, user: data.BenchUser, conversation_id: int):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation_id}/",
        headers=[
            (b"origin", b"http://127.0.0.1"),
            (b"host", b"127.0.0.1"),
            (b"cookie", f"sessionid={user.cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=30)
    assert connected, "the socket was refused"
    return communicator


async def _send_and_wait(communicator, text: str) -> float:
    """Send one message; return when it was sent, once the reply's final frame arrived."""
    sent = time.perf_counter()
    await communicator.send_json_to({"text": text})
    while True:
        frame = await communicator.receive_from(timeout=60)
        if frame.startswith('<article id="message-') and 'data-status="streaming"' not in frame:
            return sent


async def measure(application, *, repeats: int) -> dict:
    from conversations.claude.client import aclose_client, reset_clients
    from conversations.generations import generations

    fake = FakeAnthropic(ttft=0.02, tokens_per_second=2000, api_key=API_KEY)
    upstream = TimedUpstream(fake)
    saved = SavedReplies().install()
    user = await sync_to_async(data.make_user)("history")
    results: dict = {}
    async with aserving(upstream) as base_url:
        settings.ANTHROPIC_BASE_URL = base_url
        settings.ANTHROPIC_API_KEY = API_KEY
        settings.DEMO_MODE = False
        reset_clients()
        # Every conversation is made first (then vacuumed and analyzed, as autovacuum would),
        # and the measured turns take the lengths in turn (10, 100, 1,000, 10,000, 10, ...):
        # the machine's drift during the run falls on every length alike, not on one block.
        order = [(r, n) for r in range(repeats) for n in LENGTHS]
        made = {}
        for r, n in order:
            (made[r, n],) = await sync_to_async(data.make_conversations)(user, 1)
            await sync_to_async(data.add_history)(made[r, n], n - 2)
        await sync_to_async(data.tidy)()
        found = {n: {"queries": [], "times": [], "in_context": []} for n in LENGTHS}
        for r, n in order:
            communicator = await _open(application, user, made[r, n])
            await _send_and_wait(communicator, prompt(REPLY_TOKENS, "warm"))
            await generations.wait_all()
            spans_before = len(upstream.spans)
            with QueryLog() as log:  # every thread's queries (chatsite.db.orm)
                sent = await _send_and_wait(communicator, prompt(REPLY_TOKENS, r))
                await generations.wait_all()
            await communicator.disconnect()
            reply_id = max(saved.saved)
            (start, end), *_ = upstream.spans[spans_before:]
            found[n]["times"].append((saved.saved[reply_id] - sent - (end - start)) * 1000)
            found[n]["queries"].append(len(log.sql))
            found[n]["in_context"].append(len(fake.requests[-1]["body"]["messages"]))
        for n, seen in found.items():
            results[n] = {
                "queries": seen["queries"],
                "turn_ms": summary(seen["times"]),
                "messages_sent_to_claude": seen["in_context"],
                "median_ms": statistics.median(seen["times"]),
            }
            print(f"  h{n}: queries {seen['queries']}, turn {results[n]['turn_ms']}", flush=True)
    saved.remove()
    await aclose_client()  # its aiohttp session belongs to this loop
    await sync_to_async(connections.close_all)()
    figures = {f"queries_per_turn.h{n}": max(r["queries"]) for n, r in results.items()}
    figures["turn_ms.h10"] = round(results[10]["median_ms"], 2)
    figures["turn_ms.h10000"] = round(results[10000]["median_ms"], 2)
    return figures | {"details": {f"h{n}": r for n, r in results.items()}}


def run(*, repeats: int) -> dict:
    from chatsite.asgi import application  # at import it touches the database: not in a loop

    return asyncio.run(measure(application, repeats=repeats))
