"""The feedback controls under each reply: rate, comment, report, and (staff) flag.

The chat page's message partial only holds an empty container that loads these lazily,
because the same partial is pushed over the socket with no request or user in context.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from conversations.models import Message
from review.access import is_reviewer, reply_for_owner, reply_for_reviewer, reply_for_viewer
from review.feedback import flag_reply, rate_reply, remove_rating, report_reply
from review.forms import FlagForm, RatingForm
from review.models import Flag, Rating, ReviewItem

CONTROLS = "review/message_actions.html#controls"


def controls_context(user, reply: Message) -> dict:
    """What this user sees under this reply."""
    is_owner = reply.conversation.user_id == user.pk
    can_flag = is_reviewer(user)
    item = ReviewItem.objects.filter(message=reply).first()
    return {
        "reply": reply,
        "is_owner": is_owner,
        "rating": Rating.objects.filter(message=reply, user=user).first() if is_owner else None,
        "reported": is_owner
        and Flag.objects.filter(
            item__message=reply, source=Flag.Source.REPORT, created_by=user
        ).exists(),
        "can_flag": can_flag,
        "item": item if can_flag else None,
        "categories": Flag.Category.choices,
    }


def _controls(request, reply: Message, *, error: str = "", status: int = 200) -> HttpResponse:
    if not request.htmx:
        if status >= 400:
            return HttpResponse(error, status=status)
        if reply.conversation.user_id == request.user.pk:
            return redirect("conversation_detail", conversation_id=reply.conversation_id)
        return redirect("review:transcript", conversation_id=reply.conversation_id)
    context = controls_context(request.user, reply) | {"error": error}
    return TemplateResponse(request, CONTROLS, context, status=status)


@require_GET
@login_required
def reply_controls(request, message_id: int) -> HttpResponse:
    """The controls for one reply, with this user's current rating."""
    reply = reply_for_viewer(request.user, message_id)
    context = controls_context(request.user, reply) | {"error": ""}
    return TemplateResponse(request, CONTROLS, context)


@require_POST
@login_required
def reply_rate(request, message_id: int) -> HttpResponse:
    """Thumbs up or down, with an optional comment; posting again changes it."""
    reply = reply_for_owner(request.user, message_id)
    form = RatingForm(request.POST)
    if not form.is_valid():
        return _controls(request, reply, error="Choose thumbs up or down.", status=400)
    comment = form.cleaned_data["comment"] if "comment" in request.POST else None
    rate_reply(user=request.user, reply=reply, value=form.cleaned_data["value"], comment=comment)
    return _controls(request, reply)


@require_POST
@login_required
def reply_unrate(request, message_id: int) -> HttpResponse:
    """Remove the user's rating of a reply."""
    reply = reply_for_owner(request.user, message_id)
    remove_rating(user=request.user, reply=reply)
    return _controls(request, reply)


@require_POST
@login_required
def reply_report(request, message_id: int) -> HttpResponse:
    """A user reports a reply to the reviewers."""
    reply = reply_for_owner(request.user, message_id)
    form = FlagForm(request.POST)
    if not form.is_valid():
        return _controls(request, reply, error="Choose what is wrong with it.", status=400)
    report_reply(user=request.user, reply=reply, **form.cleaned_data)
    return _controls(request, reply)


@require_POST
@login_required
def reply_flag(request, message_id: int) -> HttpResponse:
    """Staff flag a reply with a category and a note."""
    reply = reply_for_reviewer(request.user, message_id)
    form = FlagForm(request.POST)
    if not form.is_valid():
        return _controls(request, reply, error="Choose a category.", status=400)
    flag_reply(user=request.user, reply=reply, **form.cleaned_data)
    return _controls(request, reply)
