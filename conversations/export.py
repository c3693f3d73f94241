"""One conversation as a Markdown document or a JSON object, for download."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone
from django.utils.text import slugify

from conversations.models import Conversation, Message

EXPORT_FIELDS = (
    "id", "role", "content", "status", "model", "tokens", "input_tokens", "output_tokens",
    "cache_creation_input_tokens", "cache_read_input_tokens", "stop_reason", "edited",
    "created_at",
)  # fmt: skip


def export_filename(conversation: Conversation, extension: str) -> str:
    """A safe download name: the title's slug and the conversation's id."""
    slug = slugify(conversation.title)[:60] or "conversation"
    return f"{slug}-{conversation.pk}.{extension}"


def _messages(conversation: Conversation) -> Iterator[Message]:
    # Chunked so a 5,000-message conversation never sits in memory as model instances.
    return conversation.messages.only(*EXPORT_FIELDS).order_by("id").iterator(chunk_size=500)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def conversation_as_json(conversation: Conversation) -> dict:
    """Title, settings and every message with its status, model and token counts."""
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "model": conversation.effective_model,
        "system_prompt": conversation.system_prompt,
        "document_name": conversation.document_name or None,
        "created_at": _when(conversation.created_at),
        "exported_at": _when(timezone.now()),
        "messages": [
            {
                "id": message.pk,
                "role": message.role,
                "content": message.content,
                "status": message.status,
                "model": message.model or None,
                "tokens": message.tokens,
                "usage": {
                    "input_tokens": message.input_tokens,
                    "output_tokens": message.output_tokens,
                    "cache_creation_input_tokens": message.cache_creation_input_tokens,
                    "cache_read_input_tokens": message.cache_read_input_tokens,
                }
                if message.role == Message.Role.ASSISTANT
                else None,
                "stop_reason": message.stop_reason or None,
                "edited": message.edited,
                "created_at": _when(message.created_at),
            }
            for message in _messages(conversation)
        ],
    }


def conversation_as_markdown(conversation: Conversation) -> str:
    """The conversation as a readable Markdown document, replies marked AI-generated."""
    lines = [
        f"# {conversation.title}",
        "",
        f"- Model: {conversation.effective_model}",
        f"- Started: {_stamp(conversation.created_at)}",
        f"- Exported: {_stamp(timezone.now())}",
    ]
    if conversation.document_name:
        lines.append(f"- Reference document: {conversation.document_name}")
    if conversation.system_prompt:
        lines += ["", "## System prompt", "", conversation.system_prompt]
    lines += ["", "---"]
    for message in _messages(conversation):
        if message.role == Message.Role.USER:
            heading = "You"
        else:
            heading = f"Claude ({message.model or conversation.effective_model}), AI-generated"
        lines += ["", f"### {heading} · {_stamp(message.created_at)}", "", message.content]
        if message.status != Message.Status.COMPLETE:
            lines += ["", f"*This reply is {message.status}.*"]
    return "\n".join(lines) + "\n"


def _stamp(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")
