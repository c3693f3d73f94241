"""The app with candidate fixes patched in at import, to measure them before anyone makes them.

    python -m bench --only load,burst --quick --whatif dispatch,layer

runs the chosen benchmarks against `bench.whatif:application` with BENCH_WHATIF set and
writes bench/results/whatif-<names>.json (never latest.json). The patches:

- dispatch: the consumer's group events (none of their handlers touches the database) skip
  channels' per-event `aclose_old_connections()`, a hop to the one thread-sensitive
  executor thread (where every ORM call of the process queues) for every frame of every
  reply; a frame then never waits behind other conversations' queries.
- stalls: a watchdog thread prints the loop thread's stack whenever the loop has not run
  for 250 ms (what holds the process up under load).
- layer: InMemoryChannelLayer's `_clean_expired()` (a walk over every channel and every
  group membership, run on each group_send and each receive) at most once a second.
"""

from __future__ import annotations

import os
import time

from chatsite.asgi import application

PATCHES = {p for p in os.environ.get("BENCH_WHATIF", "").split(",") if p}
# The consumer's group events: none of their handlers touches the database.
NO_DATABASE_EVENTS = {
    "turn.created", "conversation.titled", "reply.delta", "reply.restarted", "reply.finished",
}  # fmt: skip

if "dispatch" in PATCHES:
    from channels.consumer import get_handler_name

    from conversations.consumers import ConversationConsumer

    async def dispatch(self, message: dict) -> None:
        if message.get("type") in NO_DATABASE_EVENTS:
            await getattr(self, get_handler_name(message))(message)
            return
        await super(ConversationConsumer, self).dispatch(message)

    ConversationConsumer.dispatch = dispatch

if "layer" in PATCHES:
    from channels.layers import InMemoryChannelLayer

    _clean_expired = InMemoryChannelLayer._clean_expired

    def clean_expired_now_and_then(self) -> None:
        now = time.monotonic()
        if now - getattr(self, "_cleaned_at", 0.0) >= 1.0:
            self._cleaned_at = now
            _clean_expired(self)

    InMemoryChannelLayer._clean_expired = clean_expired_now_and_then

if "gclog" in PATCHES:  # print every garbage collection that stops the process > 5 ms
    import gc
    import sys

    _began: list[float] = []

    def _log_collection(phase: str, info: dict) -> None:
        if phase == "start":
            _began[:] = [time.perf_counter()]
            return
        ms = (time.perf_counter() - _began[0]) * 1000 if _began else 0.0
        if ms > 5:
            sys.stderr.write(f"GC gen{info['generation']} {ms:.1f} ms\n")

    gc.callbacks.append(_log_collection)

if "stalls" in PATCHES:  # print what the loop's thread runs when the loop stops > 250 ms
    import asyncio
    import sys
    import threading
    import traceback

    _tick = [time.monotonic()]
    _loop_thread = threading.main_thread().ident

    def _beat(loop: asyncio.AbstractEventLoop) -> None:
        _tick[0] = time.monotonic()
        loop.call_later(0.05, _beat, loop)

    def _watch() -> None:
        reported = 0.0
        while True:
            time.sleep(0.05)
            late = time.monotonic() - _tick[0]
            if late > 0.25 and _tick[0] != reported:
                reported = _tick[0]
                frame = sys._current_frames().get(_loop_thread)
                stack = "".join(traceback.format_stack(frame, limit=25)) if frame else "?"
                late_ms = f"{late * 1000:.0f}"
                sys.stderr.write(f"STALL {late_ms} ms so far; the loop's thread:\n{stack}\n")

    _served = application

    async def application(scope, receive, send) -> None:
        if not _tick[1:]:  # the first connection starts the watch on the serving loop
            _tick.append(True)
            _beat(asyncio.get_running_loop())
            threading.Thread(target=_watch, daemon=True).start()
        await _served(scope, receive, send)


unknown = PATCHES - {"dispatch", "layer", "gclog", "stalls"}
if unknown:
    raise SystemExit(f"unknown BENCH_WHATIF patches: {sorted(unknown)}")
