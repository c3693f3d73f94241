"""Run a script on the embedded default (a SQLite file) in a subprocess.

The suite runs on Postgres; `make run` runs on SQLite. The code paths that differ (plain
SQL, statements sent together on Postgres and one by one on SQLite) get a test here.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
"""


def run_on_sqlite(script: str, tmp_path: Path, **env_extra: str) -> str:
    """Run `script` (after django.setup() and migrate) on a new SQLite file; its stdout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    } | {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "sqlite-test-key-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
        **env_extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
