"""prometheus-client multiprocess mode: several processes, one merged /metrics."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.metrics import clean_multiprocess_dir
from tests.ops.conftest import sample

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A real process recording metrics into the shared directory."""

    def __init__(self, directory: Path, rejections: int) -> None:
        # Logs go to stdout too: keep them out of the line protocol.
        env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(directory), "LOG_LEVEL": "ERROR"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.ops.multiproc_worker", str(rejections)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        while (line := self.process.stdout.readline()) and line.strip() != "ready":
            assert line.startswith("{"), line  # only a JSON log line may come first
        assert line, "the worker exited before it was ready"

    def scrape(self) -> str:
        self.process.stdin.write("scrape\n")
        self.process.stdin.flush()
        lines = []
        while (line := self.process.stdout.readline()).strip() != "END":
            if not line.startswith("{"):  # skip a JSON log line
                lines.append(line)
        return "".join(lines)

    def exit(self) -> None:
        self.process.stdin.write("exit\n")
        self.process.stdin.close()
        assert self.process.wait(timeout=20) == 0


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_any_process_serves_the_merged_metrics_of_all(tmp_path):
    a, b = Worker(tmp_path, 2), Worker(tmp_path, 3)
    text = b.scrape()
    assert sample(text, "chatsite_rate_limit_rejections_total", scope="user") == 5
    assert sample(text, "chatsite_active_streams") == 2

    a.exit()  # its counts stay; its stream no longer does
    text = b.scrape()
    assert sample(text, "chatsite_rate_limit_rejections_total", scope="user") == 5
    assert sample(text, "chatsite_active_streams") == 1

    c = Worker(tmp_path, 1)  # a restart while b runs: nothing goes backwards
    text = c.scrape()
    assert sample(text, "chatsite_rate_limit_rejections_total", scope="user") == 6
    assert sample(text, "chatsite_active_streams") == 2
    b.exit()
    c.exit()

    d = Worker(tmp_path, 0)  # a fresh start of the whole group: the directory is wiped
    text = d.scrape()
    assert sample(text, "chatsite_rate_limit_rejections_total", scope="user") == 0
    assert sample(text, "chatsite_active_streams") == 1
    d.exit()


def test_clean_wipes_what_a_previous_run_left(tmp_path):
    gone = dead_pid()
    for name in (f"counter_{gone}.db", f"histogram_{gone}.db", f"gauge_livesum_{gone}.db"):
        (tmp_path / name).write_bytes(b"x")
    assert sorted(clean_multiprocess_dir(str(tmp_path))) == [
        f"counter_{gone}.db",
        f"gauge_livesum_{gone}.db",
        f"histogram_{gone}.db",
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def live_pid():
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)  # fmt: skip
    yield process.pid
    process.stdin.close()
    process.wait()


def test_clean_keeps_counters_while_another_process_runs(tmp_path, live_pid):
    gone = dead_pid()
    names = [f"counter_{live_pid}.db", f"gauge_livesum_{live_pid}.db",
             f"counter_{gone}.db", f"gauge_livesum_{gone}.db"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert clean_multiprocess_dir(str(tmp_path)) == [f"gauge_livesum_{gone}.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:3])
