"""CPU time of the serving process per 1,000 output tokens relayed, at a fixed moderate load.

The load: CONCURRENCY workers, each running ROUNDS turns one after another (189-token
replies, 63 upstream deltas, 50 tokens/s), after a warm-up. The figure is the daphne
process's user + system CPU time (psutil) from the first send to the last final frame, over
the tokens of the replies that completed. Everything per turn is included (socket connect,
session auth, the turn's queries, rendering, the SDK call, coalescing, frames). The same
load against bench/bare_relay.py gives the floor.
"""

from __future__ import annotations

import asyncio
import math

from bench import clients
from bench.harness import TOKENS_PER_DELTA, CpuMeter

TOKENS = 189
CONCURRENCY = 50


async def measure(run, *, rounds: int, warmup: int = 10) -> dict:
    text = clients.prompt(TOKENS, "cpu")
    conversations = iter(await run.conversations(CONCURRENCY * rounds + warmup))
    await asyncio.gather(
        *(
            clients.app_turn(run.ws_url, run.user.cookie, next(conversations), text)
            for _ in range(warmup)
        )
    )
    await asyncio.sleep(0.5)

    async def worker() -> list[clients.AppTurn]:
        done = []
        for _ in range(rounds):
            done.append(
                await clients.app_turn(run.ws_url, run.user.cookie, next(conversations), text)
            )
        return done

    with CpuMeter(app=run.app.ps) as meter:
        batches = await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    turns = [turn for batch in batches for turn in batch]
    completed = sum(1 for t in turns if t.ok)
    tokens = completed * TOKENS
    deltas = completed * math.ceil(TOKENS / TOKENS_PER_DELTA)
    cpu_ms = meter.used["app"] * 1000
    return {
        "cpu_ms_per_1k_tokens": round(cpu_ms / (tokens / 1000), 2) if tokens else None,
        "cpu_ms_per_upstream_delta": round(cpu_ms / deltas, 4) if deltas else None,
        "cpu_ms_per_turn": round(cpu_ms / completed, 2) if completed else None,
        "replies": len(turns),
        "failed": len(turns) - completed,
        "seconds": round(meter.wall, 2),
        "cpu_share": round(meter.used["app"] / meter.wall, 3),
    }
