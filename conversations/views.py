"""Conversation pages: list, detail, older messages, search, export, new, rename, delete."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from chatsite.ratelimit import ratelimit
from conversations.export import conversation_as_json, conversation_as_markdown, export_filename
from conversations.forms import ConversationSettingsForm, DocumentForm
from conversations.models import ChatModel, Conversation, conversation_for_user
from conversations.search import clean_query, search_conversations
from conversations.turns import stop_replies

SIDEBAR_PAGE_SIZE = 30
MESSAGES_PAGE_SIZE = 50
JUMP_LIMIT = 1000  # most messages one request loads to reach a search hit


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (typing only)."""

    htmx: HtmxDetails


def sidebar_context(request: HtmxHttpRequest, *, current: Conversation | None = None) -> dict:
    conversations = (
        Conversation.objects.for_user(request.user).recent().only("id", "title", "updated_at")
    )
    page = Paginator(conversations, SIDEBAR_PAGE_SIZE).get_page(request.GET.get("page"))
    return {"sidebar_page": page, "current": current}


@require_GET
@login_required
def conversation_list(request: HtmxHttpRequest) -> HttpResponse:
    """The home page: the sidebar and an empty chat."""
    template = "conversations/list.html"
    if request.htmx and request.GET.get("page"):
        template += "#sidebar-items"
    return TemplateResponse(request, template, sidebar_context(request))


@require_GET
@login_required
def conversation_detail(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """A conversation with its newest messages; the chat socket takes it from there."""
    conversation = conversation_for_user(request.user, conversation_id)
    # Keyset, never OFFSET: one more row than shown says whether older ones exist.
    newest = list(conversation.messages.order_by("-id")[: MESSAGES_PAGE_SIZE + 1])
    older_cursor = newest[MESSAGES_PAGE_SIZE - 1].pk if len(newest) > MESSAGES_PAGE_SIZE else None
    newest = newest[:MESSAGES_PAGE_SIZE]
    newest.reverse()
    context = (
        sidebar_context(request, current=conversation)
        | {
            "conversation": conversation,
            "messages": newest,
            "older_cursor": older_cursor,
            "context_start_id": conversation.context_start_id,
        }
        | settings_context(conversation)
    )
    return TemplateResponse(request, "conversations/detail.html", context)


def model_prices() -> list[dict]:
    """The enabled models with the prices in force (or "unpriced"), for the picker."""
    from billing.pricing import price_for

    rows = []
    for chat_model in ChatModel.objects.enabled():
        price = price_for(chat_model.model_id)
        rows.append({"model": chat_model, "price": price})
    return rows


def settings_context(
    conversation: Conversation, form=None, document_form=None
) -> dict[str, object]:
    return {
        "settings_form": form or ConversationSettingsForm(instance=conversation),
        "document_form": document_form or DocumentForm(),
        "model_prices": model_prices(),
    }


@require_POST
@login_required
def conversation_settings(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """Change the model, preset, system prompt or reply length of a conversation."""
    conversation = conversation_for_user(request.user, conversation_id)
    form = ConversationSettingsForm(request.POST, instance=conversation)
    if form.is_valid():
        form.save()
        return redirect("conversation_detail", conversation_id=conversation.pk)
    context = {"conversation": conversation} | settings_context(conversation, form=form)
    return TemplateResponse(
        request, "conversations/detail.html#settings-panel", context, status=400
    )


@require_POST
@login_required
@ratelimit("RATE_LIMIT_COSTLY")
def conversation_document(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """Attach (or with `remove`, detach) the conversation's reference document."""
    conversation = conversation_for_user(request.user, conversation_id)
    if request.POST.get("remove"):
        conversation.attach_document("", "")
        conversation.save(update_fields=["document_name", "document_text"])
        return redirect("conversation_detail", conversation_id=conversation.pk)
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        name, text = form.cleaned_data["document"]
        conversation.attach_document(name, text)
        conversation.save(update_fields=["document_name", "document_text"])
        return redirect("conversation_detail", conversation_id=conversation.pk)
    context = {"conversation": conversation} | settings_context(conversation, document_form=form)
    return TemplateResponse(
        request, "conversations/detail.html#settings-panel", context, status=400
    )


@require_GET
@login_required
def message_raw(request: HtmxHttpRequest, conversation_id: int, message_id: int) -> HttpResponse:
    """A message's raw markdown (the Copy button)."""
    conversation = conversation_for_user(request.user, conversation_id)
    message = get_object_or_404(conversation.messages, pk=message_id)
    return HttpResponse(message.content, content_type="text/plain; charset=utf-8")


@require_POST
@login_required
def conversation_new(request: HtmxHttpRequest) -> HttpResponse:
    """Start an empty conversation and open it."""
    conversation = Conversation.objects.create(user=request.user)
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
@login_required
def conversation_rename(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
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
def conversation_delete(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """Delete a conversation and all its messages."""
    conversation = conversation_for_user(request.user, conversation_id)
    async_to_sync(stop_replies)(conversation.pk)  # don't pay for replies nobody will see
    conversation.delete()  # locked first by conversations.turns.lock_for_deletion
    if request.htmx:
        return HttpResponseClientRedirect("/")
    return redirect("conversation_list")


@require_GET
@login_required
def conversation_messages(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """The page of messages before message `before` (scrolling back); `through` reaches one."""
    conversation = conversation_for_user(request.user, conversation_id)
    try:
        before = int(request.GET["before"])
        through = int(request.GET["through"]) if request.GET.get("through") else None
    except (KeyError, ValueError):
        return HttpResponseBadRequest("`before` must be a message id.")
    older = conversation.messages.filter(id__lt=before).order_by("-id")
    page = list(older.filter(id__gte=through)[:JUMP_LIMIT]) if through is not None else []
    if page:
        has_older = older.filter(id__lt=page[-1].pk).exists()
    else:
        page = list(older[: MESSAGES_PAGE_SIZE + 1])
        has_older = len(page) > MESSAGES_PAGE_SIZE
        page = page[:MESSAGES_PAGE_SIZE]
    page.reverse()
    context = {
        "conversation": conversation,
        "messages": page,
        "older_cursor": page[0].pk if has_older else None,
        "context_start_id": conversation.context_start_id,
    }
    if request.htmx:
        return TemplateResponse(request, "conversations/history.html#older-page", context)
    context |= sidebar_context(request, current=conversation)
    return TemplateResponse(request, "conversations/history.html", context)


@require_GET
@login_required
@ratelimit("RATE_LIMIT_COSTLY")
def conversation_search(request: HtmxHttpRequest) -> HttpResponse:
    """Search the user's own conversations, titles and messages, best match first."""
    query = clean_query(request.GET.get("q", ""))
    hits = search_conversations(request.user, query) if query else []
    context = sidebar_context(request) | {"query": query, "hits": hits}
    return TemplateResponse(request, "conversations/search.html", context)


def _download(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@require_GET
@login_required
@ratelimit("RATE_LIMIT_COSTLY")
def conversation_export_markdown(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """Download the conversation as a Markdown document."""
    conversation = conversation_for_user(request.user, conversation_id)
    response = HttpResponse(
        conversation_as_markdown(conversation), content_type="text/markdown; charset=utf-8"
    )
    return _download(response, export_filename(conversation, "md"))


@require_GET
@login_required
@ratelimit("RATE_LIMIT_COSTLY")
def conversation_export_json(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """Download the conversation as JSON: settings and every message with its usage."""
    conversation = conversation_for_user(request.user, conversation_id)
    response = JsonResponse(
        conversation_as_json(conversation), json_dumps_params={"ensure_ascii": False, "indent": 2}
    )
    return _download(response, export_filename(conversation, "json"))
