"""Feedback on replies: ratings, user reports and staff flags, and how they feed the queue."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Message
from review.models import Flag, Rating, ReviewItem

COMMENT_MAX_CHARS = 2000
NOTE_MAX_CHARS = 4000


def _clean(text: str | None, limit: int) -> str:
    return (text or "").replace("\x00", "").strip()[:limit]


def _withdraw_thumbs_down(reply: Message) -> None:
    """Drop a queue item that only a (now withdrawn) thumbs down put there."""
    item = ReviewItem.objects.filter(message=reply).first()
    still_down = Rating.objects.filter(message=reply, value=Rating.Value.DOWN).exists()
    if item is not None and not still_down and item.is_withdrawable():
        item.delete()


def rate_reply(*, user, reply: Message, value: str, comment: str | None = None) -> Rating:
    """Set the user's rating of a reply; a comment of None keeps the one already there."""
    if value not in Rating.Value.values:
        raise ValueError("A rating is thumbs up or thumbs down.")
    with transaction.atomic():
        rating = Rating.objects.select_for_update().filter(message=reply, user=user).first()
        was_down = rating is not None and rating.value == Rating.Value.DOWN
        if rating is None:
            try:
                with transaction.atomic():
                    rating = Rating.objects.create(
                        message=reply,
                        user=user,
                        value=value,
                        comment=_clean(comment, COMMENT_MAX_CHARS),
                    )
            except IntegrityError:  # a concurrent first rating won: update that one
                rating = Rating.objects.select_for_update().get(message=reply, user=user)
        if rating.value != value or comment is not None:
            rating.value = value
            if comment is not None:
                rating.comment = _clean(comment, COMMENT_MAX_CHARS)
            rating.updated_at = timezone.now()
            rating.save(update_fields=["value", "comment", "updated_at"])
        if value == Rating.Value.DOWN and not was_down:
            ReviewItem.open_for(reply)
        elif value == Rating.Value.UP:
            _withdraw_thumbs_down(reply)
    return rating


def remove_rating(*, user, reply: Message) -> None:
    """Take back the user's rating of a reply (and its queue entry if nothing else holds it)."""
    with transaction.atomic():
        Rating.objects.filter(message=reply, user=user).delete()
        _withdraw_thumbs_down(reply)


def _add_flag(*, source: str, user, reply: Message, category: str, note: str) -> Flag:
    if category not in Flag.Category.values:
        raise ValueError("Choose a category.")
    with transaction.atomic():
        item = ReviewItem.open_for(reply)
        return Flag.objects.create(
            item=item,
            source=source,
            category=category,
            note=_clean(note, NOTE_MAX_CHARS),
            created_by=user,
        )


def report_reply(*, user, reply: Message, category: str, note: str = "") -> Flag:
    """A user reports a reply: it enters the review queue (reopened if it was closed)."""
    return _add_flag(
        source=Flag.Source.REPORT, user=user, reply=reply, category=category, note=note
    )


def flag_reply(*, user, reply: Message, category: str, note: str = "") -> Flag:
    """Staff flag a reply with a category and a note: it enters (or re-enters) the queue."""
    return _add_flag(source=Flag.Source.STAFF, user=user, reply=reply, category=category, note=note)
