"""The chat socket: join the conversation's group, send turns, relay the reply."""

from __future__ import annotations

import functools
import html
import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import Http404
from django.template.loader import render_to_string

from chatsite.db import bind, compiled, orm, per_vendor, run_together
from conversations import streambuffer, tabs
from conversations.claude.streaming import group_name
from conversations.frames import FrameRejected, parse_frame
from conversations.models import Conversation, Message
from conversations.turns import (
    TurnRejected,
    render_message,
    turn_continue,
    turn_edit,
    turn_regenerate,
    turn_start,
    turn_stop,
)

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
MAX_FRAME_CHARS = 200_000


@functools.cache
def _sent_frame() -> str:
    """After a message is accepted: an empty composer, no error (the same every time)."""
    return render_to_string("conversations/detail.html#composer-reset") + render_to_string(
        "conversations/detail.html#chat-error", {"error": ""}
    )


_TAB = -7_318_244_903  # stand for the conversation's id and its owner's in the compiled
_OWNER = -7_318_244_905  # queries of `_open_tab`


@per_vendor
def _tab_queries() -> tuple:
    """A socket's conversation, its owner's (`for_user`, the one access path), and its
    replies still streaming, compiled."""
    owner = get_user_model()(pk=_OWNER)
    fields = [f.attname for f in Conversation._meta.concrete_fields]
    owned = Conversation.objects.for_user(owner).filter(pk=_TAB).order_by()
    streaming = Message.objects.filter(
        conversation_id=_TAB, conversation__user=owner, status=Message.Status.STREAMING
    ).order_by()
    return fields, compiled(owned.values_list(*fields)), compiled(streaming.values_list("id"))


def _open_tab(user, conversation_id: object) -> tuple[Conversation, list[int]]:
    """The user's conversation (or Http404) and its replies still streaming: one ORM hop,
    one round trip. The owner is the filter (`for_user`, as in `conversation_for_user`); the
    queries are compiled once (building and compiling them cost more than running them: a
    socket opens for every page of a conversation)."""
    try:
        pk = int(conversation_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No such conversation.") from exc
    if not user.is_authenticated:
        raise Http404("No such conversation.")
    fields, (row_sql, row_params), (ids_sql, ids_params) = _tab_queries()
    values = {_TAB: pk, _OWNER: user.pk}
    found, streaming = run_together(
        [(row_sql, bind(row_params, values)), (ids_sql, bind(ids_params, values))]
    )
    if not found:
        raise Http404("No such conversation.")
    return Conversation.from_db(connection.alias, fields, found[0]), [row[0] for row in streaming]


def _finished(conversation_id: int, ids: list[int]) -> list[Message]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, pk__in=ids).exclude(
            status=Message.Status.STREAMING
        )
    )


class ConversationConsumer(AsyncWebsocketConsumer):
    """One browser tab on one conversation."""

    async def __call__(self, scope, receive, send):
        # Channels' session middleware wraps `send` to save the session on an HTTP
        # response's start; for a socket's frames it only looks at the session, per frame.
        # Relayed frames go to the server's own send (`_frame`); the rest as usual.
        self._server_send = getattr(getattr(send, "__self__", None), "real_send", send)
        await super().__call__(scope, receive, send)

    async def _frame(self, text: str) -> None:
        """Send one text frame of a relayed event (the socket is accepted)."""
        await self._server_send({"type": "websocket.send", "text": text})

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        try:
            self.conversation, streaming = await orm(_open_tab)(
                user, self.scope["url_route"]["kwargs"]["conversation_id"]
            )
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = group_name(self.conversation.pk)
        self.offsets: dict[int, int] = {}
        await self.channel_layer.group_add(self.group, self.channel_name)
        tabs.join(self.conversation.pk, self)
        await self.accept()
        # Replies streaming when the tab opened: catch up from their text so far (a delta
        # sent since has an offset the tab compares with it).
        for reply_id in streaming:
            text = await streambuffer.snapshot(reply_id)
            if text is not None:
                await self._catch_up(reply_id, text)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            tabs.leave(self.conversation.pk, self)
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if text_data is None:
            await self._error("The message could not be read: send text, not binary data.")
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self._error("That message is too large to send.")
            return
        try:
            frame = parse_frame(text_data)
        except FrameRejected as exc:
            await self._error(str(exc))
            return
        kind = frame.get("type", "send")
        handler = self.frame_handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._error("That action is not supported.")
            return
        try:
            await handler(self, frame)
        except TurnRejected as exc:
            await self._error(str(exc))
        except Exception:
            # A bug must not kill the socket: the user gets a message, we get the trace.
            logger.exception("chat frame %r failed", kind)
            await self._error("Something went wrong on our side. Please try again.")

    async def on_send(self, frame: dict) -> None:
        await turn_start(
            conversation=self.conversation, user_id=self.scope["user"].pk, text=frame.get("text")
        )
        await self.send(text_data=_sent_frame())

    async def on_stop(self, frame: dict) -> None:
        await turn_stop(conversation=self.conversation, message_id=frame.get("message_id"))

    async def on_regenerate(self, frame: dict) -> None:
        await turn_regenerate(
            conversation=self.conversation,
            user_id=self.scope["user"].pk,
            message_id=frame.get("message_id"),
        )

    async def on_continue(self, frame: dict) -> None:
        await turn_continue(
            conversation=self.conversation,
            user_id=self.scope["user"].pk,
            message_id=frame.get("message_id"),
        )

    async def on_edit(self, frame: dict) -> None:
        await turn_edit(
            conversation=self.conversation,
            user_id=self.scope["user"].pk,
            message_id=frame.get("message_id"),
            text=frame.get("text"),
        )

    async def on_sync(self, frame: dict) -> None:
        """Send the final form of replies the page still shows as streaming."""
        ids = frame.get("ids")
        if not isinstance(ids, list):
            return
        wanted = [i for i in ids[:50] if isinstance(i, int)]
        for message in await orm(_finished)(self.conversation.pk, wanted):
            await self.send(text_data=render_message(message))

    frame_handlers = {
        "sync": on_sync,
        "send": on_send,
        "edit": on_edit,
        "stop": on_stop,
        "regenerate": on_regenerate,
        "continue": on_continue,
    }

    async def _error(self, text: str) -> None:
        await self.send(
            text_data=render_to_string("conversations/detail.html#chat-error", {"error": text})
        )

    async def _catch_up(self, message_id: int, text: str) -> None:
        self.offsets[message_id] = len(text)
        await self.send(
            text_data=(
                f'<div hx-swap-oob="innerHTML:#message-{message_id}-stream">'
                f"{html.escape(text)}</div>"
            )
        )

    # Group events: one handler per event type. None of them touches the database, so
    # they skip Channels' per-event close_old_connections (a hop to the ORM thread that
    # made relaying a delta wait behind other conversations' queries).
    relay_events = frozenset(
        {"turn.created", "reply.delta", "reply.restarted", "reply.finished", "conversation.titled"}
    )

    # The socket's own events (connect, receive, disconnect) skip it too: every query of this
    # consumer runs in an `orm` call (chatsite.db), which closes old connections before and
    # after, so the hop per event (three per socket, one before each message sent) only
    # queued behind other turns' queries on the one ORM thread.
    socket_events = frozenset({"websocket.connect", "websocket.receive", "websocket.disconnect"})

    async def dispatch(self, message: dict) -> None:
        kind = message["type"]
        if kind in self.relay_events:
            await self.relay(message)
        elif kind in self.socket_events:
            await getattr(self, kind.replace(".", "_"))(message)
        else:
            await super().dispatch(message)

    async def relay(self, event: dict) -> None:
        """Send a reply's or turn's event to the browser (from the layer or `tabs`)."""
        if event["type"] in self.relay_events:
            await getattr(self, event["type"].replace(".", "_"))(event)

    async def turn_created(self, event: dict) -> None:
        await self.send(
            text_data=event.get("replaced", "")
            + f'<div hx-swap-oob="beforeend:#messages">{event["html"]}</div>'
            + event.get("gauge", "")
            + (
                render_to_string(
                    "conversations/detail.html#chat-error",
                    {"error": event["warning"], "warning": True},
                )
                if event.get("warning")
                else ""
            )
        )

    async def conversation_titled(self, event: dict) -> None:
        await self.send(
            text_data=event["html"]
            + render_to_string("conversations/detail.html#title-input", {"title": event["title"]})
        )

    async def reply_delta(self, event: dict) -> None:
        message_id, text, offset = event["message_id"], event["text"], event["offset"]
        seen = self.offsets.get(message_id, 0)
        if offset + len(text) <= seen:
            return  # already sent in a catch-up snapshot
        text = text[max(0, seen - offset) :]
        self.offsets[message_id] = offset + len(event["text"])
        await self._frame(
            f'<div hx-swap-oob="beforeend:#message-{message_id}-stream">{html.escape(text)}</div>'
        )

    async def reply_restarted(self, event: dict) -> None:
        self.offsets.pop(event["message_id"], None)
        await self.send(text_data=event["html"])

    async def reply_finished(self, event: dict) -> None:
        self.offsets.pop(event["message_id"], None)
        await self.send(text_data=event["html"] + event.get("gauge", ""))
