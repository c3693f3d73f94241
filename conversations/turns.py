"""A chat turn: save the user's message, start the reply, save the reply once.

Also the follow-ups on a reply: stop it, regenerate it, continue it.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from conversations import recovery, streambuffer, throttle
from conversations.claude.streaming import (
    ReplyRequest,
    apply_outcome,
    control_group_name,
    generate_reply,
    group_name,
)
from conversations.generations import Generation, generations
from conversations.models import Conversation, Message

AFTER_REPLY_STATUSES = {
    Message.Status.STOPPED,
    Message.Status.INTERRUPTED,
    Message.Status.FAILED,
}


class TurnRejected(Exception):
    """The request cannot be carried out; the text says why, for the user."""


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
    """Whole user→assistant turns, starting with a user turn, ending with the newest user.

    A user message answered several times (regenerated) counts its newest reply; an
    unanswered one, or one whose reply has no text, is dropped unless it is the newest.
    """
    messages: list[dict] = []
    pending_user: str | None = None
    for message in history:
        if message.role == Message.Role.USER:
            pending_user = message.content
        elif message.content:
            if pending_user is not None:
                messages.append({"role": "user", "content": pending_user})
                messages.append({"role": "assistant", "content": message.content})
                pending_user = None
            elif messages and messages[-1]["role"] == "assistant":
                messages[-1]["content"] = message.content  # a regenerated reply wins
    if pending_user is not None:
        messages.append({"role": "user", "content": pending_user})
    return messages


def estimate_tokens(messages: list[dict], system: str | None) -> int:
    """A rough prompt size for rate limits, before the exact figure exists."""
    chars = sum(len(m["content"]) for m in messages) + len(system or "")
    return chars // 4 + 8 * len(messages)


def render_message(message: Message) -> str:
    return render_to_string("conversations/detail.html#message", {"message": message}).strip()


def _history(conversation: Conversation, upto_id: int) -> list[Message]:
    return list(
        conversation.messages.filter(id__lte=upto_id).chronological().only("id", "role", "content")
    )


def _new_reply(conversation: Conversation, history: list[Message], now) -> Message:
    if settings.REDIS_URL:
        recovery.heartbeat()  # before the row exists, so no other process sweeps it
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=conversation.effective_model,
        context_start_id=history[0].id,
        system_prompt=conversation.system_prompt,
        owner=recovery.PROCESS_ID,
        created_at=now,
    )


def _create_turn(
    conversation: Conversation, text: str, earlier: list[Message]
) -> tuple[Message, Message]:
    with transaction.atomic():
        now = timezone.now()
        user_message = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=text, created_at=now
        )
        history = [*earlier, user_message]
        reply = _new_reply(conversation, history, now)
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    return user_message, reply


def _request(conversation: Conversation, messages: list[dict]) -> ReplyRequest:
    return ReplyRequest(
        model=conversation.effective_model,
        max_tokens=settings.CLAUDE_MAX_TOKENS,
        messages=messages,
        system=conversation.system_prompt or None,
    )


async def _check_limits(*, user_id: int, request: ReplyRequest) -> None:
    try:
        await throttle.check_rate_limits(
            user_id=user_id,
            tokens=estimate_tokens(request.messages, request.system) + request.max_tokens,
        )
    except throttle.RateLimited as exc:
        raise TurnRejected(str(exc)) from exc


async def _broadcast(conversation_id: int, event: dict) -> None:
    await get_channel_layer().group_send(group_name(conversation_id), event)


async def turn_start(*, conversation: Conversation, user_id: int, text: object) -> Message:
    """Save the user's message, then start the reply in the background; return the reply."""
    text = clean_text(text)
    # Limits are checked on the prompt as it will be, before anything is saved or sent;
    # a refused message stays in the user's composer.
    earlier = await database_sync_to_async(
        lambda: list(conversation.messages.chronological().only("id", "role", "content"))
    )()
    upcoming = build_messages([*earlier, Message(role=Message.Role.USER, content=text)])
    await _check_limits(user_id=user_id, request=_request(conversation, upcoming))
    user_message, reply = await database_sync_to_async(_create_turn)(conversation, text, earlier)
    # The transaction has committed: clients only ever see rows that exist.
    await _broadcast(
        conversation.pk,
        {"type": "turn.created", "html": render_message(user_message) + render_message(reply)},
    )
    generation = Generation(reply_id=reply.pk, conversation_id=conversation.pk)
    generations.start(generation, _run_reply(reply, _request(conversation, upcoming), generation))
    return reply


async def _run_reply(reply: Message, request: ReplyRequest, generation: Generation) -> None:
    async with throttle.call_slots():
        outcome = await generate_reply(request=request, generation=generation)
    fields = apply_outcome(reply, outcome, generation.text)
    await reply.asave(update_fields=fields)
    await streambuffer.discard(reply.pk)
    await _broadcast(
        reply.conversation_id,
        {"type": "reply.finished", "message_id": reply.pk, "html": render_message(reply)},
    )


async def turn_stop(*, conversation: Conversation, message_id: object = None) -> None:
    """Stop the conversation's streaming replies (or one of them), wherever they run."""
    target = message_id if isinstance(message_id, int) else None
    await get_channel_layer().group_send(
        control_group_name(conversation.pk), {"type": "reply.stop", "message_id": target}
    )


def _latest_reply(conversation: Conversation, message_id: object) -> Message:
    try:
        reply = conversation.messages.get(pk=int(message_id), role=Message.Role.ASSISTANT)
    except (Message.DoesNotExist, TypeError, ValueError) as exc:
        raise TurnRejected("That reply no longer exists.") from exc
    if conversation.messages.filter(id__gt=reply.id).exists():
        raise TurnRejected("Only the latest reply can be regenerated or continued.")
    if reply.status not in AFTER_REPLY_STATUSES and reply.status != Message.Status.COMPLETE:
        raise TurnRejected("That reply is still being written.")
    return reply


def _prepare_regenerate(conversation: Conversation, message_id: object):
    with transaction.atomic():
        old = _latest_reply(conversation, message_id)
        history = _history(conversation, old.id - 1)
        reply = _new_reply(conversation, history, timezone.now())
    return reply, history


async def turn_regenerate(*, conversation: Conversation, user_id: int, message_id: object):
    """Write a new reply to the same user message; the old reply stays viewable."""
    reply, history = await database_sync_to_async(_prepare_regenerate)(conversation, message_id)
    request = _request(conversation, build_messages(history))
    try:
        await _check_limits(user_id=user_id, request=request)
    except TurnRejected:
        await reply.adelete()
        raise
    await _broadcast(conversation.pk, {"type": "turn.created", "html": render_message(reply)})
    generation = Generation(reply_id=reply.pk, conversation_id=conversation.pk)
    generations.start(generation, _run_reply(reply, request, generation))
    return reply


def _prepare_continue(conversation: Conversation, message_id: object):
    with transaction.atomic():
        reply = _latest_reply(conversation, message_id)
        if reply.status not in AFTER_REPLY_STATUSES or not reply.content:
            raise TurnRejected("Only a stopped or interrupted reply with text can be continued.")
        history = _history(conversation, reply.id - 1)
        reply.status = Message.Status.STREAMING
        reply.error_kind = ""
        reply.owner = recovery.PROCESS_ID
        reply.save(update_fields=["status", "error_kind", "owner"])
    return reply, history


async def turn_continue(*, conversation: Conversation, user_id: int, message_id: object):
    """Ask Claude to carry on from where a cut-off reply stopped, in the same message."""
    reply, history = await database_sync_to_async(_prepare_continue)(conversation, message_id)
    # The partial reply is the final assistant turn: Claude continues it.
    messages = [
        *build_messages(history),
        {"role": "assistant", "content": reply.content.rstrip()},
    ]
    request = _request(conversation, messages)
    await _broadcast(
        conversation.pk,
        {"type": "reply.restarted", "message_id": reply.pk, "html": render_message(reply)},
    )
    generation = Generation.resuming(
        reply_id=reply.pk, conversation_id=conversation.pk, text=reply.content
    )
    generations.start(generation, _run_reply(reply, request, generation))
    return reply
