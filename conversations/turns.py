"""A chat turn: save the user's message, start the reply, save the reply once."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from conversations.claude.streaming import (
    ReplyRequest,
    apply_outcome,
    generate_reply,
    group_name,
)
from conversations.generations import Generation, generations
from conversations.models import Conversation, Message


class TurnRejected(Exception):
    """The message cannot be sent; the text says why, for the user."""


def clean_text(text: object) -> str:
    """Validate a message the user typed."""
    if not isinstance(text, str):
        raise TurnRejected("A message must be text.")
    text = text.replace("\x00", "").strip()
    if not text:
        raise TurnRejected("Type a message first.")
    if len(text) > settings.MESSAGE_MAX_CHARS:
        raise TurnRejected(
            f"That message is too long ({len(text):,} characters; "
            f"the limit is {settings.MESSAGE_MAX_CHARS:,})."
        )
    return text


def build_messages(history: list[Message]) -> list[dict]:
    """Whole user→assistant turns, starting with a user turn, ending with the newest user."""
    messages: list[dict] = []
    pending_user: str | None = None
    for message in history:
        if message.role == Message.Role.USER:
            pending_user = message.content  # an unanswered earlier message is dropped
        elif pending_user is not None and message.content:
            messages.append({"role": "user", "content": pending_user})
            messages.append({"role": "assistant", "content": message.content})
            pending_user = None
    if pending_user is not None:
        messages.append({"role": "user", "content": pending_user})
    return messages


def _create_turn(conversation: Conversation, text: str) -> tuple[Message, Message, list]:
    with transaction.atomic():
        now = timezone.now()
        user_message = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=text, created_at=now
        )
        history = list(
            conversation.messages.filter(id__lte=user_message.id)
            .chronological()
            .only("id", "role", "content")
        )
        reply = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            status=Message.Status.STREAMING,
            model=conversation.effective_model,
            context_start_id=history[0].id,
            system_prompt=conversation.system_prompt,
            created_at=now,
        )
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    return user_message, reply, history


def render_message(message: Message) -> str:
    return render_to_string("conversations/detail.html#message", {"message": message}).strip()


async def turn_start(*, conversation: Conversation, text: object) -> Message:
    """Save the user's message, then start the reply in the background; return the reply."""
    text = clean_text(text)
    user_message, reply, history = await database_sync_to_async(_create_turn)(conversation, text)
    # The transaction has committed: clients only ever see rows that exist.
    await get_channel_layer().group_send(
        group_name(conversation.pk),
        {
            "type": "turn.created",
            "html": render_message(user_message) + render_message(reply),
        },
    )
    request = ReplyRequest(
        model=conversation.effective_model,
        max_tokens=settings.CLAUDE_MAX_TOKENS,
        messages=build_messages(history),
        system=conversation.system_prompt or None,
    )
    generation = Generation(reply_id=reply.pk, conversation_id=conversation.pk)
    generations.start(generation, _run_reply(reply, request, generation))
    return reply


async def _run_reply(reply: Message, request: ReplyRequest, generation: Generation) -> None:
    outcome = await generate_reply(request=request, generation=generation)
    fields = apply_outcome(reply, outcome, generation.text)
    await reply.asave(update_fields=fields)
    await get_channel_layer().group_send(
        group_name(reply.conversation_id),
        {"type": "reply.finished", "message_id": reply.pk, "html": render_message(reply)},
    )
