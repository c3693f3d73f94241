"""Stream one reply from Claude, relay coalesced deltas, save it once at the end."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import anthropic
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from conversations.claude.client import get_client
from conversations.generations import Generation
from conversations.models import Message

logger = logging.getLogger(__name__)


def group_name(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


@dataclass
class ReplyRequest:
    """Everything one call to Claude needs, built before the call."""

    model: str
    max_tokens: int
    messages: list[dict]
    system: str | list[dict] | None = None


@dataclass
class ReplyOutcome:
    """What the stream produced: status, usage and why it ended."""

    status: str = Message.Status.COMPLETE
    stop_reason: str = ""
    error_kind: str = ""
    request_id: str = ""
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)


class DeltaRelay:
    """Coalesce deltas into at most STREAM_FRAMES_PER_SECOND frames; the first goes at once."""

    def __init__(self, generation: Generation, group: str) -> None:
        self.generation = generation
        self.group = group
        self.layer = get_channel_layer()
        self.interval = 1.0 / settings.STREAM_FRAMES_PER_SECOND
        self.pending: list[str] = []
        self.sent = 0  # characters already broadcast
        self.ready = asyncio.Event()
        self.closed = False

    def push(self, text: str) -> None:
        self.generation.append(text)
        self.pending.append(text)
        self.ready.set()

    async def flush(self) -> None:
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending.clear()
        offset = self.sent
        self.sent += len(text)
        await self.layer.group_send(
            self.group,
            {
                "type": "reply.delta",
                "message_id": self.generation.reply_id,
                "offset": offset,
                "text": text,
            },
        )

    async def run(self) -> None:
        """Send pending text, then wait at least one interval before the next frame."""
        while not self.closed:
            await self.ready.wait()
            self.ready.clear()
            await self.flush()
            await asyncio.sleep(self.interval)
        await self.flush()

    def close(self) -> None:
        self.closed = True
        self.ready.set()


async def stream_reply(
    *, request: ReplyRequest, generation: Generation, relay: DeltaRelay
) -> ReplyOutcome:
    """Call Claude with streaming and push each text delta to the relay."""
    outcome = ReplyOutcome(model=request.model)
    kwargs: dict = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": request.messages,
        "stream": True,
    }
    if request.system:
        kwargs["system"] = request.system
    client = get_client()
    stream = await client.messages.create(**kwargs)
    outcome.request_id = stream.response.headers.get("request-id", "")
    async with stream:
        async for event in stream:
            kind = event.type
            if kind == "content_block_delta":
                if event.delta.type == "text_delta":
                    relay.push(event.delta.text)
            elif kind == "message_start":
                usage = event.message.usage
                outcome.model = event.message.model or request.model
                outcome.usage = {
                    "input_tokens": usage.input_tokens or 0,
                    "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
                    "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
                    "output_tokens": usage.output_tokens or 0,
                }
            elif kind == "message_delta":
                outcome.stop_reason = event.delta.stop_reason or ""
                # message_delta usage is cumulative: overwrite, never add.
                outcome.usage["output_tokens"] = event.usage.output_tokens
    return outcome


def error_kind(exc: BaseException) -> str:
    """Classify a failure for the user-facing message and the record."""
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection"
    if isinstance(exc, anthropic.RateLimitError):
        return "rate_limited"
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return "authentication"
    if isinstance(exc, anthropic.BadRequestError):
        return "bad_request"
    if isinstance(exc, anthropic.APIStatusError):
        if getattr(exc, "type", None) == "overloaded_error" or exc.status_code == 529:
            return "overloaded"
        return "server_error" if exc.status_code >= 500 else "api_error"
    return "internal"


async def generate_reply(*, request: ReplyRequest, generation: Generation) -> ReplyOutcome:
    """Run the stream and the relay together; always end with the reply's final status."""
    relay = DeltaRelay(generation, group_name(generation.conversation_id))
    relay_task = asyncio.create_task(relay.run())
    started = time.monotonic()
    try:
        outcome = await stream_reply(request=request, generation=generation, relay=relay)
    except asyncio.CancelledError:
        outcome = ReplyOutcome(status=Message.Status.STOPPED, model=request.model)
    except Exception as exc:
        kind = error_kind(exc)
        if kind == "internal":
            logger.exception("reply %s failed", generation.reply_id)
        else:
            logger.warning("reply %s failed: %s", generation.reply_id, kind)
        failed = Message.Status.INTERRUPTED if generation.length else Message.Status.FAILED
        outcome = ReplyOutcome(status=failed, error_kind=kind, model=request.model)
    finally:
        relay.close()
        await asyncio.shield(relay_task)
    logger.info(
        "reply %s %s in %.0f ms",
        generation.reply_id,
        outcome.status,
        (time.monotonic() - started) * 1000,
    )
    return outcome


def apply_outcome(reply: Message, outcome: ReplyOutcome, text: str) -> list[str]:
    """Copy the outcome onto the reply; return the fields to save."""
    reply.content = text
    reply.status = outcome.status
    reply.model = outcome.model
    reply.stop_reason = outcome.stop_reason
    reply.error_kind = outcome.error_kind
    reply.request_id = outcome.request_id
    reply.input_tokens = outcome.usage.get("input_tokens")
    reply.output_tokens = outcome.usage.get("output_tokens")
    reply.cache_creation_input_tokens = outcome.usage.get("cache_creation_input_tokens")
    reply.cache_read_input_tokens = outcome.usage.get("cache_read_input_tokens")
    reply.finished_at = timezone.now()
    return [
        "content", "status", "model", "stop_reason", "error_kind", "request_id",
        "input_tokens", "output_tokens", "cache_creation_input_tokens",
        "cache_read_input_tokens", "finished_at",
    ]  # fmt: skip
