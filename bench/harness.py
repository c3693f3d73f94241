"""Processes, pinning and statistics shared by the benchmarks.

The app (daphne) runs on core 1, the fake Anthropic API and this process (the load
clients) on core 0, so runs compare (BENCH.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
PYTHON = sys.executable
APP_CORE = 1
CLIENT_CORE = 0

# The upstream every figure is taken against (BENCH.md "The upstream").
TTFT = 0.3
TOKENS_PER_SECOND = 50.0
TOKENS_PER_DELTA = 3
DELTA_INTERVAL = TOKENS_PER_DELTA / TOKENS_PER_SECOND  # 60 ms
API_KEY = "sk-ant-bench-0000"
MODEL = "claude-sonnet-4-6"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/chatsite_bench"
# Limits that never bite in a benchmark. Not "": throttle.check_rate_limits parses "" and fails.
NO_LIMIT = "1000000000/second"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DB


def base_env() -> dict[str, str]:
    """The environment of the app (and of Django in this process)."""
    env = {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DEBUG": "false",
        "STATIC_MANIFEST": "false",
        "SECURE_COOKIES": "false",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": database_url(),
        "ANTHROPIC_API_KEY": API_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "RATE_LIMIT_USER_REQUESTS": NO_LIMIT,
        "RATE_LIMIT_USER_TOKENS": NO_LIMIT,
        "RATE_LIMIT_GLOBAL_REQUESTS": NO_LIMIT,
        "RATE_LIMIT_GLOBAL_TOKENS": NO_LIMIT,
        "CLAUDE_MAX_CONCURRENT_CALLS": "100000",
    }
    return env


def ensure_database() -> None:
    """Create the bench database when it is missing (Postgres; others are left alone)."""
    import psycopg
    from psycopg import sql

    url = database_url()
    if not url.startswith(("postgres://", "postgresql://")):
        return
    head, _, name = url.rpartition("/")
    name = name.split("?", 1)[0]
    with psycopg.connect(f"{head}/postgres", autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if found.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django() -> None:
    """Configure Django in this process on the bench database (idempotent)."""
    for key, value in base_env().items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # in-process turns: quiet
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def migrate() -> None:
    """Bring the bench database up to date (other work adds migrations as it lands)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def pin_self() -> None:
    """Load clients run on the client core."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {CLIENT_CORE})


def raise_nofile(wanted: int = 16384) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"process exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


def taskset(core: int) -> list[str]:
    return ["taskset", "-c", str(core)]


@dataclass
class Served:
    """A server subprocess pinned to a core."""

    name: str
    process: subprocess.Popen
    port: int
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn(name: str, argv: list[str], port: int, env: dict[str, str]) -> Served:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 -- owned by the child
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_port(port, process)
    except RuntimeError:
        process.kill()
        raise
    return Served(name, process, port)


@contextlib.contextmanager
def fake_api(
    *, ttft: float = TTFT, tps: float = TOKENS_PER_SECOND, per_delta: int = TOKENS_PER_DELTA
) -> Iterator[Served]:
    """`python -m fakeanthropic` on the client core."""
    port = free_port()
    argv = [
        *taskset(CLIENT_CORE), PYTHON, "-m", "fakeanthropic", "--port", str(port),
        "--ttft", str(ttft), "--tps", str(tps), "--tokens-per-delta", str(per_delta),
    ]  # fmt: skip
    served = _spawn("fakeanthropic", argv, port, dict(os.environ))
    try:
        yield served
    finally:
        served.stop()


def fake_control(fake: Served, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        fake.url + path, data=data, method="POST" if data is not None else "GET"
    )
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def daphne(
    fake: Served, *, app: str = "chatsite.asgi:application", **extra_env: str
) -> Iterator[Served]:
    """The app (or the bare relay) served by daphne on the app core."""
    port = free_port()
    env = dict(os.environ) | base_env() | {"ANTHROPIC_BASE_URL": fake.url} | extra_env
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # BENCH_WRAP: a script to serve it with instead of `-m daphne` (a profiler around daphne)
    serve = os.environ.get("BENCH_WRAP", "").split() or ["-m", "daphne"]
    argv = [*taskset(APP_CORE), PYTHON, *serve, "-b", "127.0.0.1", "-p", str(port), app]
    name = "bare_relay" if "bare_relay" in app else "daphne"
    served = _spawn(name, argv, port, env)
    try:
        yield served
    finally:
        served.stop()


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in 0..100."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float]:
    """The spread of a sample, for the details file (how noisy a figure was)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), 3),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
        "mean": round(statistics.fmean(values), 3),
        "stdev": round(statistics.pstdev(values), 3),
    }


class CpuMeter:
    """CPU seconds of processes over an interval (user + system, psutil)."""

    def __init__(self, **processes: psutil.Process) -> None:
        self.processes = processes
        self.start: dict[str, float] = {}
        self.wall = 0.0

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def __enter__(self) -> CpuMeter:
        self.wall = time.monotonic()
        self.start = {name: self._cpu(p) for name, p in self.processes.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.wall
        self.used = {name: self._cpu(p) - self.start[name] for name, p in self.processes.items()}

    def shares(self) -> dict[str, float]:
        """Share of one core each process used over the interval."""
        return {name: round(used / self.wall, 3) for name, used in self.used.items()}
