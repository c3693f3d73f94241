"""Added time to first token and added inter-token delay (BENCH.md "Latency under load").

- c1: one request at a time, alternating direct and through the app; added = each app
  sample minus the direct sample just before it (a pair).
- cN: Poisson arrivals at rate N / (reply duration), so that about N replies stream at once
  (Little's law; the in-flight count is sampled every 100 ms and reported). Direct probes
  arrive alongside (Poisson, a tenth of the rate, at least 2/s); added = each app sample
  arriving in the measuring window minus the median direct TTFT of the same window.
- burst: N sockets already open send at the same instant, with 5 direct probes.
- inter-token: for app frame j, k(j) is the last upstream delta it contains (by cumulative
  characters: frames concatenate whole deltas); added_j = (app_j - app_0) - (direct_k(j) -
  direct_k(0)), against the paired direct stream of the same prompt (same delta schedule).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import statistics
import time

from bench import clients
from bench.harness import DELTA_INTERVAL, TOKENS_PER_DELTA, TTFT, percentile, summary

MS = 1000.0
C1_TOKENS = 45  # 15 deltas: a sample every ~2.3 s per pair
LOAD_TOKENS = 189  # 63 deltas, the peers' reply (BENCH.md)


def reply_seconds(tokens: int) -> float:
    return TTFT + (math.ceil(tokens / TOKENS_PER_DELTA) - 1) * DELTA_INTERVAL


def inter_token_added(turn: clients.AppTurn, direct: clients.DirectStream) -> list[float]:
    """Added delay (ms) of each app frame after the first, aligned to the direct stream."""
    if not turn.delta_times or not direct.delta_times:
        return []
    ks = [bisect.bisect_left(direct.delta_chars, c) for c in turn.delta_chars]
    if ks[-1] >= len(direct.delta_times):
        return []  # different text: cannot align
    offset = turn.delta_times[0] - direct.delta_times[ks[0]]
    return [
        (t - direct.delta_times[k] - offset) * MS
        for t, k in zip(turn.delta_times[1:], ks[1:], strict=True)
    ]


async def c1(run, *, warmup: int, samples: int) -> dict:
    """One at a time, alternating direct and app; paired differences."""
    direct_client = clients.direct_client(run.fake.url)
    conversations = await run.conversations(warmup + samples)
    added, inter, app_ttft, direct_ttft, failures = [], [], [], [], []
    for i, conversation_id in enumerate(conversations):
        text = clients.prompt(C1_TOKENS, "c1")
        direct = await clients.direct_stream(direct_client, text)
        turn = await clients.app_turn(run.ws_url, run.user.cookie, conversation_id, text)
        if i < warmup:
            continue
        if not (turn.ok and direct.ok):
            failures.append(turn.status if not turn.ok else f"direct: {direct.error}")
            continue
        added.append((turn.ttft - direct.ttft) * MS)
        app_ttft.append(turn.ttft * MS)
        direct_ttft.append(direct.ttft * MS)
        inter += inter_token_added(turn, direct)
    await direct_client.close()
    return {
        "added_ttft_ms": summary(added),
        "app_ttft_ms": summary(app_ttft),
        "direct_ttft_ms": summary(direct_ttft),
        "inter_token_added_ms": summary(inter),
        "failures": failures,
        "p50": percentile(added, 50),
        "p99": percentile(added, 99),
        "inter_p99": percentile(inter, 99),
    }


def poisson(rate: float, until: float, rng: random.Random) -> list[float]:
    times, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= until:
            return times
        times.append(t)


async def steady(run, *, n: int, measure: float, tokens: int = LOAD_TOKENS) -> dict:
    """About n replies in flight; the added TTFT of the requests arriving in the window."""
    rng = random.Random(n)
    duration = reply_seconds(tokens) + 0.05
    rate = n / duration
    warm = duration * 1.5  # the in-flight count reaches n after about one duration
    arrivals = poisson(rate, warm + measure, rng)
    probes = poisson(max(2.0, rate / 10), warm + measure, rng)
    conversations = await run.conversations(len(arrivals))
    direct_client = clients.direct_client(run.fake.url)
    text = clients.prompt(tokens, f"c{n}")
    start = time.perf_counter() + 0.5
    app_tasks = [
        asyncio.create_task(
            clients.at(start + t, clients.app_turn(run.ws_url, run.user.cookie, cid, text))
        )
        for t, cid in zip(arrivals, conversations, strict=True)
    ]
    probe_tasks = [
        asyncio.create_task(clients.at(start + t, clients.direct_stream(direct_client, text)))
        for t in probes
    ]
    window = (start + warm, start + warm + measure)
    app = await asyncio.gather(*app_tasks)
    direct = await asyncio.gather(*probe_tasks)
    await direct_client.close()
    # In flight = sent and not finished, sampled every 100 ms of the window.
    samples = [window[0] + 0.1 * i for i in range(int(measure * 10))]
    flying = [sum(1 for t in app if t.sent <= s < (t.finished or t.sent)) for s in samples]
    base = [d.ttft * MS for d in direct if d.ok and window[0] <= d.sent < window[1]]
    measured = [t for t in app if window[0] <= t.sent < window[1]]
    errors = [t for t in measured if not t.ok]
    baseline = statistics.median(base) if base else float("nan")
    added = [t.ttft * MS - baseline for t in measured if t.ok and t.ttft is not None]
    return {
        "n": n,
        "arrival_rate_per_s": round(rate, 2),
        "reply_seconds": round(duration, 3),
        "in_flight": summary([float(f) for f in flying]),
        "direct_ttft_ms": summary(base),
        "app_ttft_ms": summary([t.ttft * MS for t in measured if t.ttft is not None]),
        "added_ttft_ms": summary(added),
        "errors": len(errors),
        "error_kinds": sorted({t.status for t in errors}),
        "p50": percentile(added, 50),
        "p99": percentile(added, 99),
    }


async def burst(run, *, n: int, rounds: int, tokens: int = LOAD_TOKENS) -> dict:
    """n open sockets send at the same instant (queueing, no target)."""
    direct_client = clients.direct_client(run.fake.url)
    added, errors = [], 0
    text = clients.prompt(tokens, f"burst{n}")
    for _ in range(rounds):
        conversations = await run.conversations(n)
        sockets = await asyncio.gather(
            *(clients.open_socket(run.ws_url, run.user.cookie, c) for c in conversations)
        )
        await asyncio.sleep(0.5)
        probes = [asyncio.create_task(clients.direct_stream(direct_client, text)) for _ in range(5)]
        turns = await asyncio.gather(*(clients.run_turn(ws, text) for ws in sockets))
        direct = await asyncio.gather(*probes)
        await asyncio.gather(*(ws.close() for ws in sockets))
        baseline = statistics.median(d.ttft * MS for d in direct if d.ok)
        added += [t.ttft * MS - baseline for t in turns if t.ok]
        errors += sum(1 for t in turns if not t.ok)
        await asyncio.sleep(1.0)
    await direct_client.close()
    return {
        "added_ttft_ms": summary(added),
        "errors": errors,
        "p50": percentile(added, 50),
        "p99": percentile(added, 99),
    }
