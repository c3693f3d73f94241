"""What goes over the socket: bytes per token and frames per second per stream.

`bytes_per_token.short|long`: every WebSocket payload byte (UTF-8 text frames, no
compression) the client receives from sending its message to the reply's final frame, over
the reply's output tokens; 100- and 2,000-token replies at the standard 50 tokens/s (the
median of the runs, all run concurrently).

`frames_per_second_per_stream_max`: the most stream (delta) frames of one reply inside any
1-second window, over those replies and one 2,000-token reply with the fake API sped up to
2,000 tokens/s (where coalescing, not the upstream, sets the frame rate).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import statistics

from bench import clients
from bench.harness import fake_control

SHORT, LONG = 100, 2000


def max_frames_per_second(times: list[float]) -> int:
    """The largest number of frames inside any window [t, t + 1 s)."""
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def min_gap_ms(times: list[float]) -> float | None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return round(min(gaps) * 1000, 2) if gaps else None


async def wire(run, *, runs: int) -> dict:
    conversations = iter(await run.conversations(2 * runs + 1))
    jobs = [(SHORT, next(conversations)) for _ in range(runs)]
    jobs += [(LONG, next(conversations)) for _ in range(runs)]
    turns = await asyncio.gather(
        *(
            clients.app_turn(run.ws_url, run.user.cookie, cid, clients.prompt(n, f"wire{i}"))
            for i, (n, cid) in enumerate(jobs)
        )
    )
    per_token = {SHORT: [], LONG: []}
    frames = []
    for (n, _), turn in zip(jobs, turns, strict=True):
        if turn.ok:
            per_token[n].append(turn.bytes / n)
            frames.append(max_frames_per_second(turn.delta_times))
    normal_config = fake_control(run.fake, "/_fake/config")
    fake_control(run.fake, "/_fake/config", {"tokens_per_second": 2000})
    try:
        fast = await clients.app_turn(
            run.ws_url, run.user.cookie, next(conversations), clients.prompt(LONG, "fast")
        )
    finally:
        fake_control(run.fake, "/_fake/config", normal_config)
    fast_frames = max_frames_per_second(fast.delta_times) if fast.ok else None
    short = statistics.median(per_token[SHORT]) if per_token[SHORT] else float("nan")
    long = statistics.median(per_token[LONG]) if per_token[LONG] else float("nan")
    return {
        "bytes_per_token.short": round(short, 2),
        "bytes_per_token.long": round(long, 2),
        "frames_per_second_per_stream_max": max([*frames, fast_frames or 0]),
        "details": {
            "bytes_per_token_runs": {
                n: [round(v, 2) for v in runs] for n, runs in per_token.items()
            },
            "long_over_short": round(long / short, 3),
            "frames_max_at_50_tps": max(frames, default=None),
            "frames_max_at_2000_tps": fast_frames,
            "min_frame_gap_ms_at_2000_tps": min_gap_ms(fast.delta_times) if fast.ok else None,
            "failed": [t.status for t in [*turns, fast] if not t.ok],
        },
    }
