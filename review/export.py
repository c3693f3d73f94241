"""Rated and flagged replies as JSONL: one evaluation example per line."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from typing import TextIO

from django.db.models import Prefetch, Q, QuerySet

from conversations.context import plain_messages
from conversations.models import Message
from review.costs import reply_costs
from review.models import Flag, Rating, ReviewItem

CHUNK = 200


def exported_replies(since: datetime.datetime | None = None) -> QuerySet[Message]:
    """Replies with a rating or a review item, labelled at or after `since` if given."""
    labelled = Q(ratings__isnull=False) | Q(review_item__isnull=False)
    if since is not None:
        labelled = (
            Q(ratings__updated_at__gte=since)
            | Q(review_item__updated_at__gte=since)
            | Q(review_item__flags__created_at__gte=since)
        )
    ids = Message.objects.filter(labelled, role=Message.Role.ASSISTANT).values("id")
    return (
        Message.objects.filter(pk__in=ids)
        .select_related("review_item")
        .prefetch_related(
            Prefetch("ratings", queryset=Rating.objects.order_by("id")),
            Prefetch("review_item__flags", queryset=Flag.objects.order_by("id")),
        )
        .order_by("id")
    )


def _when(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


def reply_record(reply: Message, cost=None) -> dict:
    """One JSONL line: the exact context sent, the reply, its model and every label on it."""
    context = list(reply.context_messages().only("id", "role", "content"))
    item: ReviewItem | None = getattr(reply, "review_item", None)
    flags = list(item.flags.all()) if item else []
    ratings = list(reply.ratings.all())
    return {
        "reply_id": reply.pk,
        "conversation_id": reply.conversation_id,
        "created_at": _when(reply.created_at),
        "model": reply.model,
        "status": reply.status,
        "stop_reason": reply.stop_reason,
        "system_prompt": reply.system_prompt,
        "context": plain_messages(context),
        "context_message_ids": [message.pk for message in context],
        "reply": reply.content,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": reply.cache_creation_input_tokens,
            "cache_read_input_tokens": reply.cache_read_input_tokens,
        },
        "cost": str(cost) if cost is not None else None,
        "labels": {
            "ratings": [
                {"value": r.value, "comment": r.comment, "updated_at": _when(r.updated_at)}
                for r in ratings
            ],
            "flags": [
                {
                    "source": f.source,
                    "category": f.category,
                    "note": f.note,
                    "created_at": _when(f.created_at),
                }
                for f in flags
            ],
            "categories": sorted({f.category for f in flags}),
            "state": item.state if item else None,
            "resolution_note": item.resolution_note if item else "",
        },
    }


def _chunks(replies: QuerySet[Message]) -> Iterator[list[Message]]:
    chunk: list[Message] = []
    for reply in replies.iterator(chunk_size=CHUNK):
        chunk.append(reply)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def jsonl_lines(replies: QuerySet[Message]) -> Iterable[str]:
    """Serialise replies one line at a time, a chunk of rows from the database at a time."""
    for chunk in _chunks(replies):
        costs = reply_costs([reply.pk for reply in chunk])
        for reply in chunk:
            yield json.dumps(reply_record(reply, costs.get(reply.pk)), ensure_ascii=False) + "\n"


def write_jsonl(stream: TextIO, replies: QuerySet[Message]) -> int:
    """Write replies to a text stream; return how many lines were written."""
    count = 0
    for line in jsonl_lines(replies):
        stream.write(line)
        count += 1
    return count
