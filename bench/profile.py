"""Where the app's CPU goes per relayed delta: py-spy on daphne under the cpu benchmark's load.

`python -m bench --only profile` samples the daphne process (py-spy, non-idle samples, on
the client core) while bench.cpu's load runs, then charges each function its share of the
samples times the measured CPU per upstream delta. Writes bench/results/profile.txt (the
collapsed stacks, for flame graphs) and bench/results/profile-top.json.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from bench import cpu
from bench.harness import CLIENT_CORE, RESULTS, taskset

FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """'func (path/to/site-packages/pkg/mod.py:12)' -> 'pkg/mod.py:func'."""
    found = FRAME_RE.match(frame.strip())
    if not found:
        return frame.strip()
    path = found["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{found['func']}"


def analyse(raw: Path, cpu_ms_per_delta: float, top: int = 25) -> dict:
    own, inclusive, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n

    def table(counter: Counter) -> list[dict]:
        return [
            {
                "function": name,
                "share": round(n / total, 4),
                "us_per_delta": round(1000 * cpu_ms_per_delta * n / total, 2),
            }
            for name, n in counter.most_common(top)
        ]

    return {"samples": total, "self": table(own), "inclusive": table(inclusive)}


async def profile(run, *, rounds: int) -> dict:
    spy = shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    raw = RESULTS / "profile.txt"
    process = subprocess.Popen(
        [*taskset(CLIENT_CORE), spy, "record", "--pid", str(run.app.process.pid),
         "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # py-spy attaches
    try:
        measured = await cpu.measure(run, rounds=rounds)
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes what it has
        await asyncio.to_thread(process.wait, 30)
    report = {"load": measured} | analyse(raw, measured["cpu_ms_per_upstream_delta"])
    (RESULTS / "profile-top.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
