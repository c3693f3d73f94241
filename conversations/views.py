"""Conversation pages: list, detail, new, rename, delete."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from conversations.models import Conversation, conversation_for_user

SIDEBAR_PAGE_SIZE = 30
MESSAGES_PAGE_SIZE = 50


class HtmxHttpRequest:  # typing aid: django-htmx adds .htmx to every request
    htmx: HtmxDetails


def sidebar_context(request, *, current: Conversation | None = None) -> dict:
    conversations = (
        Conversation.objects.for_user(request.user).recent().only("id", "title", "updated_at")
    )
    page = Paginator(conversations, SIDEBAR_PAGE_SIZE).get_page(request.GET.get("page"))
    return {"sidebar_page": page, "current": current}


@require_GET
@login_required
def conversation_list(request) -> HttpResponse:
    """The home page: the sidebar and an empty chat."""
    template = "conversations/list.html"
    if request.htmx and request.GET.get("page"):
        template += "#sidebar-items"
    return TemplateResponse(request, template, sidebar_context(request))


@require_GET
@login_required
def conversation_detail(request, conversation_id: int) -> HttpResponse:
    """A conversation with its newest messages; the chat socket takes it from there."""
    conversation = conversation_for_user(request.user, conversation_id)
    newest = list(conversation.messages.order_by("-id")[:MESSAGES_PAGE_SIZE])
    newest.reverse()
    context = sidebar_context(request, current=conversation) | {
        "conversation": conversation,
        "messages": newest,
        "context_start_id": conversation.context_start_id,
    }
    return TemplateResponse(request, "conversations/detail.html", context)


@require_POST
@login_required
def conversation_new(request) -> HttpResponse:
    """Start an empty conversation and open it."""
    conversation = Conversation.objects.create(user=request.user)
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
@login_required
def conversation_rename(request, conversation_id: int) -> HttpResponse:
    """Rename a conversation; the sidebar entry is re-rendered for htmx."""
    conversation = conversation_for_user(request.user, conversation_id)
    try:
        conversation.rename(request.POST.get("title", ""))
    except ValueError as exc:
        return HttpResponse(str(exc), status=400)
    if request.htmx:
        return TemplateResponse(
            request,
            "conversations/list.html#sidebar-item",
            {"item": conversation, "current": conversation},
        )
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
@login_required
def conversation_delete(request, conversation_id: int) -> HttpResponse:
    """Delete a conversation and all its messages."""
    conversation = conversation_for_user(request.user, conversation_id)
    conversation.delete()
    if request.htmx:
        return HttpResponseClientRedirect("/")
    return redirect("conversation_list")
