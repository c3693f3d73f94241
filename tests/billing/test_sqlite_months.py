"""The embedded default (SQLite) keeps the budget months exact, as Postgres does.

SQLite does decimal arithmetic in floating point: 0.3 - 0.1 - 0.2 is -2.8e-17 there, and
the month's non-negative check would refuse the settlement that gives a hold back. The suite
runs on Postgres, so this runs the billing SQL in a subprocess on a SQLite file.
"""

from tests.sqlite import run_on_sqlite

SCRIPT = """
import datetime as dt
from decimal import Decimal
from django.utils import timezone
from accounts.models import User
from billing import budgets
from billing.models import GlobalMonth, Reservation, UserMonth
user = User.objects.create(username="sqlite")
month = dt.date(2026, 11, 1)
UserMonth.objects.create(user=user, month=month, reserved=Decimal("0.3"))
GlobalMonth.objects.create(month=month, reserved=Decimal("0.3"))
for amount in ("0.1", "0.2"):
    budgets.release(
        Reservation.objects.create(
            user=user, month=month, amount=Decimal(amount), model="m", purpose="chat",
            priced=True, prompt_tokens=1, max_tokens=1, expires_at=timezone.now(),
        )
    )
print(UserMonth.objects.get().reserved, GlobalMonth.objects.get().reserved)
"""


def test_giving_holds_back_on_sqlite_ends_at_exactly_zero(tmp_path):
    out = run_on_sqlite(SCRIPT, tmp_path)
    assert out.split()[-2:] == ["0.000000", "0.000000"]
