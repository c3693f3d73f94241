"""Conversations on hold: the retention purge must leave these alone.

A conversation is held while any of its replies has a review item that is not dismissed
(open, in review, or resolved: resolved items are evaluation material). Dismissing the
last such item releases the hold. Usage in a purge:

    Message.objects.filter(created_at__lt=cutoff).exclude(
        conversation_id__in=held_conversation_ids()
    )
"""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.models import Conversation
from review.models import ReviewItem


def held_conversation_ids() -> QuerySet:
    """The ids of held conversations, as a subquery (not evaluated until used)."""
    return ReviewItem.objects.holding().values("conversation_id").distinct()


def exclude_held(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Narrow a queryset of conversations to those the purge may touch."""
    return conversations.exclude(pk__in=held_conversation_ids())


def is_held(conversation: Conversation | int) -> bool:
    """True when the conversation must not be purged."""
    pk = conversation.pk if isinstance(conversation, Conversation) else conversation
    return ReviewItem.objects.holding().filter(conversation_id=pk).exists()
