"""Retention: message text older than CHAT_RETENTION_DAYS is blanked on a schedule; rows,
token counts and the cost ledger stay; conversations on hold are skipped; it reports."""

import datetime as dt
import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from billing.models import LedgerEntry
from conversations import retention
from conversations.models import Conversation, Message
from review.models import ReviewItem
from tests.billing.conftest import spend
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - dt.timedelta(days=40)
RECENT = NOW - dt.timedelta(days=5)


def exchange(conversation, when, *, text="secret words"):
    question = MessageFactory(conversation=conversation, content=f"Q: {text}", created_at=when)
    reply = MessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=f"A: {text}",
        system_prompt="Be brief.",
        created_at=when,
        input_tokens=120,
        output_tokens=30,
        tokens=30,
        model="claude-sonnet-4-6",
    )
    return question, reply


@pytest.fixture
def chats(user):
    plain = ConversationFactory(user=user)
    old_q, old_a = exchange(plain, OLD)
    new_q, new_a = exchange(plain, RECENT)
    held = ConversationFactory(user=user)
    _, held_reply = exchange(held, OLD)
    ReviewItem.open_for(held_reply)  # reported: on hold
    released = ConversationFactory(user=user)
    _, released_reply = exchange(released, OLD)
    item = ReviewItem.open_for(released_reply)
    item.dismiss(by=None, note="Not a problem")  # dismissed: no longer held
    entry = spend(user, "0.45", at=OLD, conversation=plain)
    return {
        "old": [old_q, old_a],
        "recent": [new_q, new_a],
        "held": list(held.messages.all()),
        "released": list(released.messages.all()),
        "entry": entry,
    }


def refreshed(messages):
    return [Message.objects.get(pk=m.pk) for m in messages]


def test_old_text_is_blanked_and_the_numbers_stay(chats, caplog):
    ledger_before = list(LedgerEntry.objects.values())
    caplog.set_level(logging.INFO)

    report = retention.purge_old_messages(days=30)

    for message in refreshed(chats["old"] + chats["released"]):
        assert (message.content, message.system_prompt) == ("", "")
    old_reply = refreshed(chats["old"])[1]
    assert (old_reply.input_tokens, old_reply.output_tokens, old_reply.tokens) == (120, 30, 30)
    assert old_reply.model == "claude-sonnet-4-6"
    assert old_reply.status == Message.Status.COMPLETE
    assert all(m.content.endswith("secret words") for m in refreshed(chats["recent"]))
    assert all(m.content.endswith("secret words") for m in refreshed(chats["held"]))
    assert list(LedgerEntry.objects.values()) == ledger_before
    assert report.messages_purged == 4
    assert report.conversations_purged == 2
    assert report.conversations_held == 1
    assert report.retention_days == 30
    assert any("retention_purge" in str(record.msg) for record in caplog.records)


def test_a_second_run_has_nothing_left_to_do(chats):
    retention.purge_old_messages(days=30)
    again = retention.purge_old_messages(days=30)
    assert (again.messages_purged, again.conversations_purged) == (0, 0)


def test_zero_keeps_everything_forever(chats, settings):
    settings.CHAT_RETENTION_DAYS = 0
    report = retention.purge_old_messages()
    assert report.messages_purged == 0
    assert all(m.content for m in refreshed(chats["old"]))


def test_the_setting_is_the_default(chats, settings):
    settings.CHAT_RETENTION_DAYS = 60
    assert retention.purge_old_messages().messages_purged == 0
    settings.CHAT_RETENTION_DAYS = 30
    assert retention.purge_old_messages().messages_purged == 4


def test_the_command_purges_and_prints_its_report(chats, settings):
    settings.CHAT_RETENTION_DAYS = 30
    out = StringIO()
    call_command("purge_old_messages", stdout=out)
    report = json.loads(out.getvalue())
    assert report["messages_purged"] == 4
    assert report["conversations_held"] == 1


def test_the_task_purges_and_queues_tomorrows_run(chats, settings):
    settings.CHAT_RETENTION_DAYS = 30
    result = retention.purge_old_messages_task.call()
    assert result["messages_purged"] == 4
    queued = DBTaskResult.objects.get(
        task_path=retention.purge_old_messages_task.module_path, status="READY"
    )
    assert queued.run_after == retention.next_run()
    assert queued.run_after > timezone.now()


def test_scheduling_is_idempotent():
    assert retention.schedule_daily_purge() is True
    assert retention.schedule_daily_purge() is False
    assert DBTaskResult.objects.filter(status="READY").count() == 1


def test_the_next_run_is_the_next_purge_hour():
    at = dt.datetime(2026, 11, 25, 2, 59, tzinfo=dt.UTC)
    assert retention.next_run(at) == dt.datetime(2026, 11, 25, 3, tzinfo=dt.UTC)
    at = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
    assert retention.next_run(at) == dt.datetime(2026, 11, 26, 3, tzinfo=dt.UTC)


@pytest.mark.django_db(transaction=True)  # the worker closes and reopens connections
def test_the_worker_runs_a_queued_purge(chats, settings):
    settings.CHAT_RETENTION_DAYS = 30
    retention.purge_old_messages_task.enqueue()  # due now
    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0.01")
    assert all(m.content == "" for m in refreshed(chats["old"]))
    done = DBTaskResult.objects.get(status="SUCCESSFUL")
    assert done.return_value["messages_purged"] == 4


def test_idle_conversations_lose_their_titles_and_documents(user):
    idle = ConversationFactory(
        user=user, title="Planning the secret merger", document_name="deal.txt",
        document_text="secret terms", created_at=OLD,
    )  # fmt: skip
    exchange(idle, OLD)
    active = ConversationFactory(user=user, title="Secret merger, part 2", created_at=OLD)
    exchange(active, OLD)
    exchange(active, RECENT)
    held = ConversationFactory(user=user, title="Reported secret", created_at=OLD)
    _, reply = exchange(held, OLD)
    ReviewItem.open_for(reply)

    report = retention.purge_old_messages(days=30)

    idle.refresh_from_db()
    assert (idle.title, idle.document_name, idle.document_text) == (
        Conversation.DEFAULT_TITLE,
        "",
        "",
    )
    assert Conversation.objects.get(pk=active.pk).title == "Secret merger, part 2"
    assert Conversation.objects.get(pk=held.pk).title == "Reported secret"
    assert report.conversations_cleared == 1
    assert retention.purge_old_messages(days=30).conversations_cleared == 0
