"""The embedded default (SQLite) keeps the budget months exact, as Postgres does.

SQLite does decimal arithmetic in floating point: 0.3 - 0.1 - 0.2 is -2.8e-17 there, and
the month's non-negative check would refuse the settlement that gives a hold back. The suite
runs on Postgres, so this runs the billing SQL in a subprocess on a SQLite file.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import datetime as dt
from decimal import Decimal
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts.models import User
from billing import budgets
from chatsite.db import run_together
from billing.models import GlobalMonth, UserMonth
user = User.objects.create(username="sqlite")
month = dt.date(2026, 11, 1)
UserMonth.objects.create(user=user, month=month, reserved=Decimal("0.3"))
GlobalMonth.objects.create(month=month, reserved=Decimal("0.3"))
run_together(budgets._move(user_id=user.pk, month=month, spent=Decimal(0), released=Decimal("0.1")))
run_together(budgets._move(user_id=user.pk, month=month, spent=Decimal(0), released=Decimal("0.2")))
print(UserMonth.objects.get().reserved, GlobalMonth.objects.get().reserved)
"""


def test_giving_holds_back_on_sqlite_ends_at_exactly_zero(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    } | {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "sqlite-test-key-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["0.000000", "0.000000"]
