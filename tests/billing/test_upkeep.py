"""Stale holds are given back on a schedule: the worker's task chain, started by migrate."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from billing import budgets, upkeep
from billing.models import Reservation, UserMonth

pytestmark = pytest.mark.django_db


def waiting():
    return DBTaskResult.objects.filter(
        task_path=upkeep.release_stale_task.module_path, status="READY"
    )


@pytest.fixture
def every_hour(settings):
    settings.BUDGET_RELEASE_STALE_MINUTES = 60
    return settings


def stale_hold(user):
    """A hold whose call's process died: it expired and nothing settled it."""
    made = timezone.now() - dt.timedelta(hours=2)
    return budgets.reserve(
        user=user, model="claude-sonnet-4-6", prompt_tokens=1000, max_tokens=1000, at=made
    )


@pytest.mark.django_db(transaction=True)  # the worker closes and reopens connections
def test_the_worker_gives_back_stale_holds_and_queues_the_next_run(user, every_hour):
    hold = stale_hold(user)
    assert UserMonth.objects.get(user=user).reserved == hold.amount > 0
    upkeep.release_stale_task.enqueue()  # due now

    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0.01")

    assert not Reservation.objects.exists()
    assert UserMonth.objects.get(user=user).reserved == 0
    done = DBTaskResult.objects.get(
        task_path=upkeep.release_stale_task.module_path, status="SUCCESSFUL"
    )
    assert done.return_value == {"released": 1}
    [queued] = waiting()
    assert timezone.now() + dt.timedelta(minutes=59) < queued.run_after
    assert queued.run_after <= timezone.now() + dt.timedelta(minutes=60)


def test_a_live_hold_stays(user, every_hour):
    live = budgets.reserve(
        user=user, model="claude-sonnet-4-6", prompt_tokens=1000, max_tokens=1000
    )
    assert upkeep.release_stale_task.call() == {"released": 0}
    assert Reservation.objects.get() == live


def test_scheduling_is_idempotent_and_can_be_switched_off(settings, every_hour):
    assert upkeep.schedule_stale_release() is True
    assert upkeep.schedule_stale_release() is False
    assert waiting().count() == 1
    waiting().delete()
    settings.BUDGET_RELEASE_STALE_MINUTES = 0
    assert upkeep.schedule_stale_release() is False
    assert not waiting().exists()


def test_migrate_starts_the_chain(every_hour):
    call_command("migrate", verbosity=0)
    assert waiting().count() == 1
    call_command("migrate", verbosity=0)  # every deployment: still one waiting run
    assert waiting().count() == 1
