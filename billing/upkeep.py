"""Holds whose call never settled (its process died) are given back on a schedule.

A hold expires an hour after it was made (a batch's after 25 hours); until it is released,
the month's `reserved` counts it, so dashboards and the budget left would show it as
spent. Holds in the way of a new one are freed at once anyway (`budgets.Hold`); this
releases the rest. The task `release_stale_task` runs in the `db_worker` every
BUDGET_RELEASE_STALE_MINUTES and queues its next run; `migrate` starts the chain. Without a
worker, run `python manage.py billing_release_stale` from cron.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from billing.budgets import release_stale_reservations
from chatsite.chains import queue_next


@task()
def release_stale_task() -> dict:
    """Release expired holds, then queue the next run."""
    released = release_stale_reservations()
    schedule_stale_release()
    return {"released": released}


def schedule_stale_release(*, now: dt.datetime | None = None) -> bool:
    """Queue the next release unless one is waiting or the schedule is off; True if queued."""
    minutes = settings.BUDGET_RELEASE_STALE_MINUTES
    if minutes <= 0:
        return False
    return queue_next(release_stale_task, (now or timezone.now()) + dt.timedelta(minutes=minutes))
