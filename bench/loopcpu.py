"""daphne with the event loop's CPU charged to what ran: `BENCH_WRAP=bench/loopcpu.py`.

    BENCH_WRAP=bench/loopcpu.py python -m bench --only cpu   # the app, then the bare relay

Every callback of the loop thread (a task's step, a transport's read, a timer) and every
wait in `select` is timed with `time.thread_time()` (this thread's CPU, system calls
included: nothing another thread does), and charged to the callback, or for a task's step
to its coroutine (`_run_reply`, `DeltaRelay.run`, the socket's `ProtocolTypeRouter.__call__`
...). With LOOPCPU_DEEP=1 a step is charged to where the coroutine resumed (its innermost
awaits: slower, it walks the chain each step). When daphne exits, the totals go to
bench/results/loopcpu-<app|bare_relay>.json: calls and ms per name, biggest first, and the
thread's CPU since the start. Comparing the app's file with the bare relay's says which part
of the app costs what the floor does not (bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import sys
import time
from asyncio import events
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEEP = bool(os.environ.get("LOOPCPU_DEEP"))
_spent: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0])


def _coroutine_name(task: asyncio.Task) -> str:
    coroutine = task.get_coro()
    name = getattr(coroutine, "__qualname__", type(coroutine).__name__)
    if not DEEP:
        return f"task:{name}"
    chain, awaited = [], coroutine
    while awaited is not None and len(chain) < 12:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        qualname = getattr(awaited, "__qualname__", type(awaited).__name__)
        chain.append(f"{qualname}:{frame.f_lineno if frame else '-'}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    inner = [link for link in chain if not link.startswith(("_wrap_awaitable", "Future"))]
    return f"task:{name} @ " + " > ".join(inner[-3:])


def _name(callback: object) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return _coroutine_name(owner)
    if isinstance(owner, asyncio.Future):
        return "future callback"
    return getattr(callback, "__qualname__", None) or type(callback).__name__


def _charged(original, name_of):
    def run(self, *args, **kwargs):
        started = time.thread_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent = _spent[name_of(self)]
            spent[0] += 1
            spent[1] += time.thread_time() - started

    return run


def install() -> float:
    """Charge the loop thread's CPU from now on; return the thread's CPU so far."""
    events.Handle._run = _charged(events.Handle._run, lambda handle: _name(handle._callback))
    selectors.EpollSelector.select = _charged(selectors.EpollSelector.select, lambda _: "select")
    return time.thread_time()


def write(started: float, served: str) -> Path:
    ranked = sorted(_spent.items(), key=lambda item: -item[1][1])
    out = RESULTS / f"loopcpu-{'bare_relay' if 'bare_relay' in served else 'app'}.json"
    out.write_text(
        json.dumps(
            {
                "loop_thread_cpu_s": round(time.thread_time() - started, 3),
                "by": {name: [calls, round(cpu * 1000, 1)] for name, (calls, cpu) in ranked},
            },
            indent=0,
        )
    )
    return out


if __name__ == "__main__":
    from daphne.cli import CommandLineInterface

    began = install()
    sys.argv = ["daphne", *sys.argv[1:]]
    try:
        CommandLineInterface.entrypoint()
    finally:
        write(began, sys.argv[-1])
