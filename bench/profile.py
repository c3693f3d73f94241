"""Where the app's CPU goes per relayed delta: py-spy on daphne under the cpu benchmark's load.

`python -m bench --only profile` samples the daphne process (py-spy, non-idle samples, on
the client core) while bench.cpu's load runs, then charges each function its share of the
samples holding the GIL (--gil) times the measured CPU per upstream delta. A second,
wall-clock profile (--idle, per thread) shows how busy each thread is: the executor thread
that runs every database_sync_to_async call is the one to watch. Writes
bench/results/profile-cpu.txt and profile-wall.txt (collapsed stacks, for flame graphs) and
bench/results/profile-top.json.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
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


IDLE_LEAVES = ("select", "wait", "get", "_worker", "acquire")


def threads(raw: Path) -> dict:
    """Per thread: the share of wall-clock samples in which it was working, not parked.

    The executor thread (ThreadPoolExecutor-0_0) runs every database_sync_to_async call
    of the process, one after another: near 1.0 it is the queue every turn waits in.
    """
    total, busy = Counter(), Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.startswith("thread (") or not count.isdigit():
            continue
        frames = stack.split(";")
        name = frames[0].split(": ", 1)[-1]
        leaf = _short(frames[-1]).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        total[name] += int(count)
        if len(frames) > 1 and not leaf.endswith(IDLE_LEAVES):
            busy[name] += int(count)
    return {name: round(busy[name] / n, 3) for name, n in total.most_common()}


def _record(spy: str, pid: int, out: Path, *flags: str) -> subprocess.Popen:
    argv = [*taskset(CLIENT_CORE), spy, "record", "--pid", str(pid), "--rate", "200",
            "--format", "raw", "--output", str(out), "--nonblocking", *flags]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def profile(run, *, rounds: int) -> dict:
    """CPU profile (--gil: samples holding the GIL) and a wall profile (--idle, per thread)."""
    beside = Path(sys.executable).parent / "py-spy"
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    cpu_raw, wall_raw = RESULTS / "profile-cpu.txt", RESULTS / "profile-wall.txt"
    pid = run.app.process.pid
    spies = [
        _record(spy, pid, cpu_raw, "--gil"),
        _record(spy, pid, wall_raw, "--idle", "--threads"),
    ]
    await asyncio.sleep(1.5)  # py-spy attaches
    try:
        measured = await cpu.measure(run, rounds=rounds)
    finally:
        for spy_process in spies:
            spy_process.send_signal(2)  # SIGINT: py-spy writes what it has
        for spy_process in spies:
            await asyncio.to_thread(spy_process.wait, 30)
    report = {
        "load": measured,
        "busy_share_by_thread": threads(wall_raw),
        "cpu": analyse(cpu_raw, measured["cpu_ms_per_upstream_delta"]),
    }
    (RESULTS / "profile-top.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
