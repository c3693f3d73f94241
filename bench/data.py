"""Rows the benchmarks need in the bench database: users, sessions, conversations, history.

Sync ORM code: call it before the event loop starts or through asyncio.to_thread.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import connections, transaction
from django.utils import timezone

from conversations.models import Conversation, Message

USER_PREFIX = "bench-"
RUN_PREFIX = f"{USER_PREFIX}{os.getpid()}-"  # several runs may share the database


@dataclass(frozen=True)
class BenchUser:
    id: int
    username: str
    cookie: str  # the session cookie value


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reset() -> None:
    """Remove what finished runs left (their bench users and everything they own)."""
    User = get_user_model()
    names = User.objects.filter(username__startswith=USER_PREFIX).values_list("username", flat=True)
    pid_of = re.compile(rf"^{re.escape(USER_PREFIX)}(\d+)-")
    stale = [
        name
        for name in names
        if not (found := pid_of.match(name)) or not _running(int(found.group(1)))
    ]
    users = User.objects.filter(username__in=stale)
    Message.objects.filter(conversation__user__in=users).delete()
    Conversation.objects.filter(user__in=users).delete()
    users.delete()
    tidy()
    connections.close_all()


def tidy() -> None:
    """Vacuum and analyze the bench database after bulk deletes or inserts (Postgres).

    This machine's Postgres runs with autovacuum off (CI's configuration), so nothing else
    would: a run's reset left up to a million dead message rows behind, and the planner's
    statistics were those of before a benchmark added 100,000 messages. A served app under
    autovacuum has neither.
    """
    connection = connections["default"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")


def make_user(name: str) -> BenchUser:
    """A user with a logged-in session, as a browser that signed in has.

    The session is written the way django.contrib.auth.login writes it, without the
    login signals (login-attempt tracking wants a real request).
    """
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=RUN_PREFIX + name)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return BenchUser(user.pk, user.username, session.session_key)


def make_conversations(user: BenchUser, count: int, **fields: object) -> list[int]:
    """`count` empty conversations of this user, made in one INSERT; their ids in order."""
    now = timezone.now()
    rows = [
        Conversation(user_id=user.id, title=f"bench {i}", created_at=now, updated_at=now, **fields)
        for i in range(count)
    ]
    return [c.pk for c in Conversation.objects.bulk_create(rows, batch_size=2000)]


def add_history(conversation_id: int, count: int, *, words: int = 40) -> None:
    """`count` earlier complete messages (user/assistant alternating, ending on a reply).

    Each carries an exact token share as if the manager had learnt it, so the history is
    what a long-lived conversation looks like.
    """
    sentence = " ".join(f"word{i % 97}" for i in range(words))
    now = timezone.now()
    rows = []
    for i in range(count):
        assistant = (count - 1 - i) % 2 == 0  # the newest one is a reply
        rows.append(
            Message(
                conversation_id=conversation_id,
                role=Message.Role.ASSISTANT if assistant else Message.Role.USER,
                content=f"{i}: {sentence}",
                tokens=words * 2,
                tokens_exact=True,
                status=Message.Status.COMPLETE,
                model="claude-sonnet-4-6" if assistant else "",
                output_tokens=words * 2 if assistant else None,
                created_at=now,
                finished_at=now if assistant else None,
            )
        )
    with transaction.atomic():
        Message.objects.bulk_create(rows, batch_size=5000)
