"""Who may see and touch what in review: the one path to a transcript for staff."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from conversations.models import Conversation, Message
from review.models import ReviewItem

REVIEW_PERMISSION = "review.review_replies"
EXPORT_PERMISSION = "review.export_reviews"


def is_reviewer(user) -> bool:
    """Staff with the reviewer permission (the Reviewers group grants it; admins have all)."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(REVIEW_PERMISSION)
    )


def reviewers() -> QuerySet:
    """Everyone a review item may be assigned to."""
    permission = Permission.objects.filter(
        content_type__app_label="review", codename="review_replies"
    )
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(
            Q(is_superuser=True)
            | Q(groups__permissions__in=permission)
            | Q(user_permissions__in=permission)
        )
        .distinct()
        .order_by("username")
    )


def reviewable_conversations(user) -> QuerySet[Conversation]:
    """Conversations this user may open as staff: any for admins, else flagged or reported."""
    if not is_reviewer(user):
        return Conversation.objects.none()
    if user.is_superuser:
        return Conversation.objects.all()
    return Conversation.objects.filter(pk__in=ReviewItem.objects.values("conversation_id"))


def transcript_for_staff(user, conversation_id: int | str) -> Conversation:
    """Return a conversation staff may read, or raise PermissionDenied/Http404."""
    if not is_reviewer(user):
        raise PermissionDenied("Only reviewers can open transcripts.")
    try:
        conversation = Conversation.objects.select_related("user").get(pk=int(conversation_id))
    except (Conversation.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such conversation.") from exc
    if not reviewable_conversations(user).filter(pk=conversation.pk).exists():
        raise PermissionDenied("Staff can open only flagged or reported conversations.")
    return conversation


def item_for_reviewer(user, item_id: int | str) -> ReviewItem:
    """Return a queue item for a reviewer, or raise PermissionDenied/Http404."""
    if not is_reviewer(user):
        raise PermissionDenied("Only reviewers can use the review queue.")
    try:
        return ReviewItem.objects.select_related(
            "message", "conversation__user", "assignee", "closed_by"
        ).get(pk=int(item_id))
    except (ReviewItem.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such review item.") from exc


def _reply(queryset: QuerySet[Message], message_id: int | str) -> Message:
    try:
        return (
            queryset.filter(role=Message.Role.ASSISTANT)
            .exclude(status=Message.Status.STREAMING)
            .get(pk=int(message_id))
        )
    except (Message.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such reply.") from exc


def reply_for_owner(user, message_id: int | str) -> Message:
    """A finished reply in one of the user's own conversations (rate, report), else 404."""
    return _reply(
        Message.objects.filter(conversation__in=Conversation.objects.for_user(user)), message_id
    )


def reply_for_reviewer(user, message_id: int | str) -> Message:
    """A finished reply staff may flag: in their own or an openable conversation."""
    if not is_reviewer(user):
        raise PermissionDenied("Only reviewers can flag replies.")
    reply = _reply(Message.objects.select_related("conversation"), message_id)
    if reply.conversation.user_id != user.pk:
        transcript_for_staff(user, reply.conversation_id)
    return reply


def reply_for_viewer(user, message_id: int | str) -> Message:
    """A reply whose feedback controls this user may see: the owner's, or a reviewer's."""
    try:
        return reply_for_owner(user, message_id)
    except Http404:
        if not is_reviewer(user):
            raise
    return reply_for_reviewer(user, message_id)
