"""A person's own data: everything we hold about them as JSON, and deleting the account.

Deleting removes the person, their conversations and messages, ratings and budgets; the
cost ledger keeps its rows with the user (and conversation, message) set to NULL, so
spend totals never shrink; every session of theirs ends.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone

from batches.models import BatchJob
from billing.models import LedgerEntry, UserBudget
from conversations.export import conversation_as_json
from conversations.models import Conversation
from review.models import Flag, Rating

FORMAT_VERSION = 1
BATCH_FIELDS = (
    "id", "name", "mode", "model", "system_prompt", "max_tokens", "status", "row_count",
    "created_at", "finished_at",
)  # fmt: skip
LEDGER_FIELDS = (
    "id", "created_at", "purpose", "model", "conversation_id", "message_id", "input_tokens",
    "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens", "output_tokens",
    "cost", "priced", "batch", "status", "error_kind",
)  # fmt: skip


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact, never a float
    return value


def user_data(user) -> dict:
    """Everything Chatsite holds about `user` (and nothing about anyone else)."""
    conversations = Conversation.objects.for_user(user).order_by("id")
    ratings = Rating.objects.filter(user=user).select_related("message").order_by("id")
    flags = Flag.objects.filter(created_by=user).select_related("item").order_by("id")
    ledger = LedgerEntry.objects.filter(user=user).order_by("id").values(*LEDGER_FIELDS)
    budget = UserBudget.objects.filter(user=user).first()
    jobs = BatchJob.objects.for_user(user).order_by("id").values(*BATCH_FIELDS)
    return {
        "format": "chatsite-user-data",
        "version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": _plain(user.date_joined),
            "last_login": _plain(user.last_login),
            "is_staff": user.is_staff,
            "ai_notice_dismissed": user.ai_notice_dismissed,
        },
        "conversations": [conversation_as_json(c) for c in conversations.iterator()],
        "ratings": [
            {
                "message_id": rating.message_id,
                "conversation_id": rating.message.conversation_id,
                "value": rating.value,
                "comment": rating.comment,
                "created_at": _plain(rating.created_at),
                "updated_at": _plain(rating.updated_at),
            }
            for rating in ratings
        ],
        "flags": [
            {
                "message_id": flag.item.message_id,
                "source": flag.source,
                "category": flag.category,
                "note": flag.note,
                "created_at": _plain(flag.created_at),
            }
            for flag in flags
        ],
        # Each job's results download from its page (JSONL or CSV).
        "batch_jobs": [{key: _plain(value) for key, value in row.items()} for row in jobs],
        "usage": [{key: _plain(value) for key, value in row.items()} for row in ledger],
        "budget": {"monthly_usd": _plain(budget.monthly_usd)} if budget else None,
    }


def end_sessions(user_id: int) -> int:
    """Delete every stored session logged in as this user; return how many."""
    ended = []
    live = Session.objects.filter(expire_date__gt=timezone.now())
    for session in live.iterator(chunk_size=1000):
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            ended.append(session.pk)
    Session.objects.filter(pk__in=ended).delete()
    # Read through the cache (SESSION_ENGINE = cached_db): drop the cached copies too.
    prefix = getattr(import_module(settings.SESSION_ENGINE).SessionStore, "cache_key_prefix", "")
    if prefix:
        caches[settings.SESSION_CACHE_ALIAS].delete_many([prefix + key for key in ended])
    return len(ended)


def delete_account(user) -> None:
    """Delete the person and their content; anonymise their ledger rows; end sessions."""
    user_id = user.pk
    with transaction.atomic():
        # The foreign key says SET_NULL too; done first and explicitly because the ledger
        # keeping its numbers is the promise, not a side effect.
        LedgerEntry.objects.filter(user_id=user_id).update(user=None)
        user.delete()
    end_sessions(user_id)
