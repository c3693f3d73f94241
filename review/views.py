"""Staff screens: the review queue, one item with its context, decisions, transcripts."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from conversations.context import plain_messages
from review.access import is_reviewer, item_for_reviewer, transcript_for_staff
from review.costs import reply_cost
from review.feedback import flag_reply
from review.forms import AssignForm, CloseForm, FlagForm, QueueFilterForm
from review.models import AuditLog, Flag, Rating, ReviewItem

QUEUE_PAGE_SIZE = 50
TRANSCRIPT_PAGE_SIZE = 100
MESSAGES_BEFORE = 6
MESSAGES_AFTER = 2


@require_GET
@login_required
def queue(request) -> HttpResponse:
    """Replies waiting for review, filtered by state, category, model, assignee and date."""
    if not is_reviewer(request.user):
        raise PermissionDenied("Only reviewers can use the review queue.")
    models = sorted(
        m for m in ReviewItem.objects.values_list("message__model", flat=True).distinct() if m
    )
    form = QueueFilterForm(request.GET or None, models=models)
    items = (
        form.apply(ReviewItem.objects.all(), user=request.user)
        .select_related("message", "conversation__user", "assignee")
        .prefetch_related(
            Prefetch("flags", queryset=Flag.objects.order_by("id")),
            Prefetch("message__ratings", queryset=Rating.objects.order_by("id")),
        )
        .newest_first()
    )
    page = Paginator(items, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "review/queue.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    context = {"form": form, "page": page, "query": query.urlencode()}
    return TemplateResponse(request, template, context)


def _item_page(request, item: ReviewItem, *, status: int = 200, **forms) -> HttpResponse:
    reply = item.message
    conversation = item.conversation
    AuditLog.record(
        actor=request.user,
        view=AuditLog.View.REVIEW_ITEM,
        conversation=conversation,
        message=reply,
        path=request.path,
    )
    context_messages = list(reply.context_messages())
    before = list(conversation.messages.filter(id__lt=reply.pk).order_by("-id")[:MESSAGES_BEFORE])
    after = conversation.messages.filter(id__gt=reply.pk).chronological()[:MESSAGES_AFTER]
    context = {
        "item": item,
        "reply": reply,
        "conversation": conversation,
        "owner": conversation.user,
        "ratings": reply.ratings.select_related("user").order_by("id"),
        "flags": item.flags.select_related("created_by").order_by("id"),
        "system_prompt": reply.system_prompt,
        "sent_messages": plain_messages(context_messages),
        "context_ids": {message.pk for message in context_messages},
        "window": [*reversed(before), reply, *after],
        "cost": reply_cost(reply.pk),
        "assign_form": forms.get("assign_form") or AssignForm(initial={"assignee": item.assignee}),
        "flag_form": forms.get("flag_form") or FlagForm(),
        "close_form": forms.get("close_form") or CloseForm(),
        "me": request.user,
    }
    return TemplateResponse(request, "review/item.html", context, status=status)


@require_GET
@login_required
def item_detail(request, item_id: int) -> HttpResponse:
    """One reply under review: labels, decisions, the context sent, tokens, cost (audited)."""
    return _item_page(request, item_for_reviewer(request.user, item_id))


@require_POST
@login_required
def item_assign(request, item_id: int) -> HttpResponse:
    """Assign the item to a reviewer (or nobody)."""
    item = item_for_reviewer(request.user, item_id)
    form = AssignForm(request.POST)
    if form.is_valid():
        try:
            item.assign(form.cleaned_data["assignee"])
            return redirect("review:item", item_id=item.pk)
        except ValueError as exc:
            form.add_error(None, str(exc))
    return _item_page(request, item, assign_form=form, status=400)


@require_POST
@login_required
def item_flag(request, item_id: int) -> HttpResponse:
    """Flag the item's reply with a category and a note."""
    item = item_for_reviewer(request.user, item_id)
    form = FlagForm(request.POST)
    if not form.is_valid():
        return _item_page(request, item, flag_form=form, status=400)
    flag_reply(user=request.user, reply=item.message, **form.cleaned_data)
    return redirect("review:item", item_id=item.pk)


def _close(request, item_id: int, *, dismiss: bool) -> HttpResponse:
    item = item_for_reviewer(request.user, item_id)
    form = CloseForm(request.POST)
    if form.is_valid():
        close = item.dismiss if dismiss else item.resolve
        try:
            close(by=request.user, note=form.cleaned_data["note"])
            return redirect("review:item", item_id=item.pk)
        except ValueError as exc:
            form.add_error(None, str(exc))
    return _item_page(request, item, close_form=form, status=400)


@require_POST
@login_required
def item_resolve(request, item_id: int) -> HttpResponse:
    """Close the item as dealt with, with a note."""
    return _close(request, item_id, dismiss=False)


@require_POST
@login_required
def item_dismiss(request, item_id: int) -> HttpResponse:
    """Close the item as not a problem, with a note (releases the conversation's hold)."""
    return _close(request, item_id, dismiss=True)


@require_POST
@login_required
def item_reopen(request, item_id: int) -> HttpResponse:
    """Put a closed item back in the queue."""
    item = item_for_reviewer(request.user, item_id)
    item.reopen()
    return redirect("review:item", item_id=item.pk)


@require_GET
@login_required
def transcript(request, conversation_id: int) -> HttpResponse:
    """A user's whole conversation, for staff (flagged or reported ones only; audited)."""
    conversation = transcript_for_staff(request.user, conversation_id)
    page = Paginator(conversation.messages.chronological(), TRANSCRIPT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    AuditLog.record(
        actor=request.user,
        view=AuditLog.View.TRANSCRIPT,
        conversation=conversation,
        path=request.get_full_path(),
        detail=f"page {page.number} of {page.paginator.num_pages}",
    )
    messages = list(page.object_list)
    items = ReviewItem.objects.filter(message_id__in=[m.pk for m in messages])
    by_reply = {item.message_id: item for item in items}
    for message in messages:
        message.queue_item = by_reply.get(message.pk)
    context = {"conversation": conversation, "page": page, "messages": messages}
    return TemplateResponse(request, "review/transcript.html", context)
