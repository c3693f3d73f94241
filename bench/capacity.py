"""How many replies one daphne process carries at once (`max_streams_per_process`).

Each level holds N concurrent replies at 50 tokens/s: N workers, each running one turn
after another (a new conversation and socket per turn, 600-token replies of ~12 s), started
over a short ramp. Over the hold window a level fails when any gap between consecutive
stream frames of a reply exceeds 10x the delta interval (600 ms), or when more than 0.1% of
the replies streaming during the window end badly (not `complete`, rejected, refused socket,
timeout) or arrive with text missing from their deltas (the in-memory channel layer drops
frames when a consumer falls behind). The figure is the last level that held.
"""

from __future__ import annotations

import asyncio
import time

import psutil

from bench import clients
from bench.harness import DELTA_INTERVAL, CpuMeter, summary
from fakeanthropic.replies import filler_reply

MS = 1000.0
GAP_LIMIT = 10 * DELTA_INTERVAL
ERROR_LIMIT = 0.001
REPLY_TOKENS = 600


async def hold(run, *, n: int, hold_seconds: float, ramp: float) -> dict:
    """Hold n concurrent replies for hold_seconds after the ramp; measure the window."""
    text = clients.prompt(REPLY_TOKENS, f"cap{n}")
    expected = len(filler_reply(REPLY_TOKENS))
    per_worker = int((ramp + hold_seconds) / 12) + 2
    conversations = iter(await run.conversations(n * per_worker))
    start = time.perf_counter()
    window = (start + ramp, start + ramp + hold_seconds)
    turns: list[clients.AppTurn] = []

    async def worker(delay: float) -> None:
        await asyncio.sleep(delay)
        while time.perf_counter() < window[1]:
            conversation_id = next(conversations, None)
            if conversation_id is None:
                return
            turn = await clients.app_turn(run.ws_url, run.user.cookie, conversation_id, text)
            turns.append(turn)
            if turn.status in ("connect-failed", "rejected"):
                await asyncio.sleep(0.5)  # don't spin on a refusing server

    meter = CpuMeter(app=run.app.ps, fake=run.fake.ps, clients=psutil.Process())
    with meter:
        await asyncio.gather(*(worker(ramp * i / n) for i in range(n)))
    # The replies streaming at some time in the window (a failed connect counts at once).
    started = [
        t
        for t in turns
        if (t.sent or window[0]) < window[1] and (t.finished or window[1]) > window[0]
    ]
    bad = [t for t in started if not t.ok]
    short = [t for t in started if t.ok and (t.delta_chars or [0])[-1] != expected]
    gaps = [g for t in turns for g in t.gaps(*window)]
    worst = max(gaps, default=0.0)
    # The gap before a reply's final frame (its save, settlement and rendering) apart from
    # those between deltas: which one failed a level says where the app fell behind.
    finals = [
        t.finished - t.delta_times[-1]
        for t in turns
        if t.finished and t.delta_times and window[0] <= t.delta_times[-1] < t.finished <= window[1]
    ]
    errors = len(bad) + len(short)
    error_rate = errors / len(started) if started else 1.0
    return {
        "n": n,
        "replies_in_window": len(started),
        "errors": errors,
        "error_kinds": sorted({t.status for t in bad} | ({"missing-deltas"} if short else set())),
        "error_rate": round(error_rate, 5),
        "max_gap_ms": round(worst * MS, 1),
        "max_final_gap_ms": round(max(finals, default=0.0) * MS, 1),
        "gap_ms": summary([g * MS for g in gaps]),
        "ttft_ms": summary([t.ttft * MS for t in started if t.ttft is not None]),
        "cpu_share": meter.shares(),
        "held": worst <= GAP_LIMIT and error_rate <= ERROR_LIMIT and bool(started),
    }


async def max_streams(run, *, levels: list[int], hold_seconds: float, ramp: float) -> dict:
    """Raise the level until one fails; report the last that held."""
    results, best = [], 0
    for n in levels:
        result = await hold(run, n=n, hold_seconds=hold_seconds, ramp=ramp)
        results.append(result)
        print(
            f"  {n} streams: max gap {result['max_gap_ms']} ms, "
            f"errors {result['errors']}/{result['replies_in_window']}, cpu {result['cpu_share']}"
            f" -> {'held' if result['held'] else 'failed'}",
            flush=True,
        )
        if not result["held"]:
            break
        best = n
        await asyncio.sleep(2)  # let the app settle
    return {"max_streams_per_process": best, "levels": results, "hold_seconds": hold_seconds}
