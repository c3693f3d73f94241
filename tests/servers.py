"""Run the real app under daphne in a subprocess, on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_daphne(
    *, fake_base_url: str, port: int | None = None, log_path: Path | None = None, **env: str
):
    """Start daphne serving chatsite; return (process, base_url) once it accepts. Its output
    goes to `log_path` when given."""
    port = port or free_port()
    full_env = (
        os.environ
        | {
            "DATABASE_URL": test_database_url(),
            "ANTHROPIC_BASE_URL": fake_base_url,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        | env
    )
    full_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = subprocess.DEVNULL if log_path is None else open(log_path, "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "chatsite.asgi:application"],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    if log_path is not None:
        log.close()  # the child has its own copy
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("daphne did not start") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_db_worker(*, fake_base_url: str, name: str, log_path: Path | None = None, **env: str):
    """Start `manage.py db_worker` (the background task worker) on the test database."""
    full_env = (
        os.environ
        | {
            "DATABASE_URL": test_database_url(),
            "ANTHROPIC_BASE_URL": fake_base_url,
            "DEBUG": "false",
        }
        | env
    )
    full_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = log_path.open("w") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay",
         "--interval", "0.05", "--worker-id", name],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
