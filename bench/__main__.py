"""python -m bench [--only NAME[,NAME]] [--quick] [--list]

Runs the benchmarks and merges their figures into bench/results/latest.json (the keys of
issues 4 and 6) and the evidence behind them (spreads, sample counts, per-level results)
into bench/results/latest-details.json. See bench/README.md for how each figure is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench import harness

KEYS = (
    "added_ttft_ms.c1.p50",
    "added_ttft_ms.c1.p99",
    "added_ttft_ms.c50.p99",
    "added_ttft_ms.c200.p99",
    "added_ttft_ms.burst50.p99",
    "inter_token_added_ms.p99",
    "max_streams_per_process",
    "bytes_per_token.short",
    "bytes_per_token.long",
    "frames_per_second_per_stream_max",
    "cpu_ms_per_1k_tokens.app",
    "cpu_ms_per_1k_tokens.bare_relay",
    "queries_per_turn.h10",
    "queries_per_turn.h100",
    "queries_per_turn.h1000",
    "queries_per_turn.h10000",
    "turn_ms.h10",
    "turn_ms.h10000",
    "idle_kb_per_socket",
    "cost_ratio_vs_guide_manager",
    "cache_hit_share.ours",
    "cache_hit_share.guide",
    "open_ms.m50",
    "open_ms.m5000",
    "open_ms.ratio",
)
LATEST = harness.RESULTS / "latest.json"
DETAILS = harness.RESULTS / "latest-details.json"
APP = {"target": "chatsite.asgi:application", "env": {}}  # --whatif changes it


@dataclass
class Run:
    """A fake API and a served app (or the bare relay), with a logged-in bench user."""

    fake: harness.Served
    app: harness.Served
    user: object

    @property
    def ws_url(self) -> str:
        return self.app.ws_url

    async def conversations(self, count: int) -> list[int]:
        from bench import data

        return await asyncio.to_thread(data.make_conversations, self.user, count)


@contextlib.contextmanager
def served(name: str, *, app: str | None = None) -> Iterator[Run]:
    from bench import data

    user = data.make_user(name)
    env = APP["env"] if app is None else {}
    with (
        harness.fake_api() as fake,
        harness.daphne(fake, app=app or APP["target"], **env) as server,
    ):
        yield Run(fake, server, user)


def r2(value: float) -> float:
    return round(value, 2)


def bench_latency(quick: bool) -> tuple[dict, dict]:
    from bench import latency

    with served("latency") as run:
        found = asyncio.run(latency.c1(run, warmup=3 if quick else 5, samples=30 if quick else 60))
    figures = {
        "added_ttft_ms.c1.p50": r2(found["p50"]),
        "added_ttft_ms.c1.p99": r2(found["p99"]),
        "inter_token_added_ms.p99": r2(found["inter_p99"]),
    }
    return figures, found


def bench_load(quick: bool) -> tuple[dict, dict]:
    from bench import latency

    figures, details = {}, {}
    for n in (50, 200):
        with served(f"load{n}") as run:
            found = asyncio.run(latency.steady(run, n=n, measure=8.0 if quick else 30.0))
        figures[f"added_ttft_ms.c{n}.p99"] = r2(found["p99"])
        details[f"c{n}"] = found
    return figures, details


def bench_burst(quick: bool) -> tuple[dict, dict]:
    from bench import latency

    with served("burst") as run:
        found = asyncio.run(latency.burst(run, n=50, rounds=1 if quick else 3))
    return {"added_ttft_ms.burst50.p99": r2(found["p99"])}, found


def bench_capacity(quick: bool) -> tuple[dict, dict]:
    from bench import capacity

    levels = [50, 100, 200, 300, 400, 500] if quick else [50, 100, 150, 200, 300, 400, 500,
                                                          600, 800, 1000]  # fmt: skip
    with served("capacity") as run:
        found = asyncio.run(
            capacity.max_streams(
                run, levels=levels, hold_seconds=8.0 if quick else 60.0, ramp=3.0 if quick else 5.0
            )
        )
    return {"max_streams_per_process": found["max_streams_per_process"]}, found


def bench_wire(quick: bool) -> tuple[dict, dict]:
    from bench import wire

    with served("wire") as run:
        found = asyncio.run(wire.wire(run, runs=2 if quick else 3))
    return {k: v for k, v in found.items() if k != "details"}, found["details"]


def bench_cpu(quick: bool) -> tuple[dict, dict]:
    from bench import cpu

    rounds = 2 if quick else 5
    with served("cpu") as run:
        app = asyncio.run(cpu.measure(run, rounds=rounds))
    with served("bare", app="bench.bare_relay:application") as run:
        bare = asyncio.run(cpu.measure(run, rounds=rounds))
    figures = {
        "cpu_ms_per_1k_tokens.app": app["cpu_ms_per_1k_tokens"],
        "cpu_ms_per_1k_tokens.bare_relay": bare["cpu_ms_per_1k_tokens"],
    }
    return figures, {"app": app, "bare_relay": bare}


def bench_history(quick: bool) -> tuple[dict, dict]:
    from bench import history

    found = history.run(repeats=3 if quick else 10)
    from bench import data

    data.tidy()  # its 100,000 messages: the next benchmarks plan with current statistics
    return {k: v for k, v in found.items() if k != "details"}, found["details"]


def bench_idle(quick: bool) -> tuple[dict, dict]:
    from bench import idle

    with served("idle") as run:
        found = asyncio.run(idle.measure(run, sockets=2000))
    return {"idle_kb_per_socket": found["idle_kb_per_socket"]}, found["details"]


def bench_cost(quick: bool) -> tuple[dict, dict]:
    from bench import cost

    found = cost.run()
    return {k: v for k, v in found.items() if k != "details"}, found["details"]


def bench_open(quick: bool) -> tuple[dict, dict]:
    from bench import open_conversation

    found = open_conversation.run(samples=20 if quick else 40)
    return {k: v for k, v in found.items() if k != "details"}, found.get("details", {})


def bench_dashboard(quick: bool) -> tuple[dict, dict]:
    from bench import dashboard  # its own throwaway database, in a child process

    found = dashboard.run(quick=quick)
    return {k: v for k, v in found.items() if not k.startswith("_")}, found["_dashboard_details"]


def bench_profile(quick: bool) -> tuple[dict, dict]:
    from bench import profile

    bare = os.environ.get("BENCH_PROFILE") == "bare"  # the floor instead of the app
    app = {"app": "bench.bare_relay:application"} if bare else {}
    with served("profile", **app) as run:
        found = asyncio.run(profile.profile(run, rounds=2 if quick else 5))
    return {}, found


BENCHMARKS: dict[str, Callable[[bool], tuple[dict, dict]]] = {
    "cost": bench_cost,
    "history": bench_history,
    "wire": bench_wire,
    "latency": bench_latency,
    "load": bench_load,
    "burst": bench_burst,
    "cpu": bench_cpu,
    "idle": bench_idle,
    "capacity": bench_capacity,
    "open": bench_open,
    "dashboard": bench_dashboard,
}
ON_REQUEST = {"profile": bench_profile}  # not part of a full run


def read(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write(figures: dict, details: dict, whatif: str = "") -> None:
    """Merge this run's figures into the files as they are now (another run may write too)."""
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    if whatif:
        path = harness.RESULTS / f"whatif-{whatif.replace(',', '-')}.json"
        path.write_text(json.dumps({"figures": figures, "details": details}, indent=2) + "\n")
        return
    merged = read(LATEST) | figures
    # Issue 6's keys first, in order; then the keys other benchmarks add, as they are.
    ordered = {key: merged.get(key) for key in KEYS}
    ordered |= {key: value for key, value in merged.items() if key not in ordered}
    LATEST.write_text(json.dumps(ordered, indent=2) + "\n")
    DETAILS.write_text(json.dumps(read(DETAILS) | details, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[2])
    parser.add_argument("--only", action="append", default=[], help="benchmark name(s)")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke check)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    parser.add_argument(
        "--whatif", default="", help="patches of bench/whatif.py to measure (not latest.json)"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="serve bench/bare_relay.py instead of the app (results/whatif-floor.json)",
    )
    args = parser.parse_args(argv)
    known = BENCHMARKS | ON_REQUEST
    if args.list:
        print("\n".join(known))
        return 0
    names = [n for item in args.only for n in item.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(known)}")

    harness.pin_self()
    harness.raise_nofile()
    harness.ensure_database()
    harness.setup_django()
    harness.migrate()
    from bench import data

    data.reset()
    if args.whatif:
        APP["target"] = "bench.whatif:application"
        APP["env"] = {"BENCH_WHATIF": args.whatif}
    elif args.floor:  # what the floor itself carries: the same load on the bare relay
        APP["target"] = "bench.bare_relay:application"
        args.whatif = "floor"
    figures, details = {}, {}  # this run's; write() merges them into the files
    for name in names:
        print(f"bench {name}{' (quick)' if args.quick else ''} ...", flush=True)
        began = time.monotonic()
        found, evidence = known[name](args.quick)
        figures |= found
        details[name] = {
            "taken": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "seconds": round(time.monotonic() - began, 1),
            "figures": found,
            "evidence": evidence,
        }
        write(figures, details, args.whatif)
        for key, value in found.items():
            print(f"  {key} = {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
