"""Stream one reply from Claude, relay coalesced deltas, save it once at the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass, field

import anthropic
import httpx2
import orjson
from anthropic._streaming import SSEDecoder, async_iter_response_bytes
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from chatsite import cacheio
from chatsite.pacing import FramePacer
from conversations import streambuffer, tabs
from conversations.claude import breaker
from conversations.claude.client import get_client
from conversations.generations import Generation
from conversations.models import Message

logger = logging.getLogger(__name__)


def group_name(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def control_group_name(conversation_id: int) -> str:
    """Where stop requests go; every process generating a reply here listens."""
    return f"conversation-{conversation_id}-control"


@dataclass
class ReplyRequest:
    """Everything one call to Claude needs, built before the call."""

    model: str
    max_tokens: int
    messages: list[dict]
    system: str | list[dict] | None = None

    def body(self) -> bytes:
        """The `messages.create(stream=True)` body as the SDK encodes it (compact UTF-8 JSON).

        Sent with the SDK's own `post` (its auth, headers, errors and stream): `create()`
        first deep-copies the whole body, every message dict, to prepare it, 0.4 ms for a
        full context (686 messages, 208 KB) on every turn, for values that are plain JSON.
        Encoded by orjson, byte for byte what the SDK's `json.dumps(ensure_ascii=False,
        separators=(",", ":"))` makes, for a thirtieth of the time: 0.03 against 1.0 ms for
        a full context.
        """
        body: dict = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": self.messages,
            "stream": True,
        }
        if self.system:
            body["system"] = self.system
        return orjson.dumps(body)


@dataclass
class ReplyOutcome:
    """What the stream produced: status, usage and why it ended."""

    status: str = Message.Status.COMPLETE
    stop_reason: str = ""
    error_kind: str = ""
    request_id: str = ""
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    connected: bool = False  # the current attempt got an HTTP 200 and started streaming
    final_usage: bool = False  # message_delta arrived: output_tokens is the API's figure
    ttft_ms: int | None = None
    duration_ms: int | None = None
    retry_in: float | None = None


class DeltaRelay(FramePacer):
    """A reply's deltas to its tabs, coalesced into at most STREAM_FRAMES_PER_SECOND frames
    (`chatsite.pacing`: the first at once, from `push` itself), none before the tabs know
    the reply. With this process's tabs only, sending never waits."""

    def __init__(self, generation: Generation, group: str) -> None:
        super().__init__(settings.STREAM_FRAMES_PER_SECOND, held=not generation.announced.is_set())
        self.generation = generation
        self.label = f"reply {generation.reply_id}"
        self.group = group
        self.layer = get_channel_layer()
        self.local_only = tabs.reaches_every_tab(self.layer)
        self.shared_text = streambuffer.shared()  # other processes catch up from Redis
        self.sent = generation.length  # characters already broadcast (a continued reply)
        self._announcement: asyncio.Task[None] | None = None
        if self.held:  # no frame before the tabs know the reply
            self._announcement = self.loop.create_task(self._after_announcement())

    def push(self, text: str) -> None:
        if "\x00" in text:  # Postgres text cannot hold NUL; nobody needs to see it
            text = text.replace("\x00", "")
        self.generation.append(text)
        super().push(text)

    async def _after_announcement(self) -> None:
        await self.generation.announced.wait()
        self.release()

    async def _frame(self, text: str) -> None:
        offset = self.sent
        self.sent += len(text)
        if self.shared_text:
            await streambuffer.append(self.generation.reply_id, text)
        event = {
            "type": "reply.delta",
            "message_id": self.generation.reply_id,
            "offset": offset,
            "text": text,
        }
        await tabs.deliver(self.generation.conversation_id, event)
        if not self.local_only:
            await self.layer.group_send(self.group, event)


async def stream_reply(
    *, request: ReplyRequest, relay: DeltaRelay, outcome: ReplyOutcome, started: float
) -> None:
    """Call Claude with streaming, push each text delta to the relay, fill in the outcome.

    The events are read as the SDK's raw server-sent events (`_events`) and parsed with
    `orjson.loads` (a fifth of `json.loads`' time per delta): the SDK's typed iteration
    builds and validates a pydantic model per event, which under load was a tenth of the
    process's CPU for fields we read three of. An `error` event mid-stream becomes the
    SDK's own status error, as its iterator raises it.
    """
    outcome.model = request.model
    client = get_client()
    stream = await client.post(
        "/v1/messages",
        cast_to=anthropic.types.Message,
        content=request.body(),
        stream=True,
        stream_cls=anthropic.AsyncStream[anthropic.types.RawMessageStreamEvent],
    )
    outcome.connected = True
    await breaker.record_success()  # Claude answered: close the circuit without waiting
    response = stream.response
    outcome.request_id = response.headers.get("request-id", "")
    push, loads = relay.push, orjson.loads
    async with stream:
        async for sse in _events(client, response):
            kind = sse.event
            if kind == "content_block_delta":
                delta = loads(sse.data)["delta"]
                if delta.get("type") == "text_delta":
                    if outcome.ttft_ms is None:
                        outcome.ttft_ms = int((time.monotonic() - started) * 1000)
                    push(delta["text"])
            elif kind == "message_start":
                message = loads(sse.data)["message"]
                usage = message.get("usage") or {}
                outcome.model = message.get("model") or request.model
                outcome.usage = {
                    name: usage.get(name) or 0
                    for name in (
                        "input_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                        "output_tokens",
                    )
                }
                breakdown = usage.get("cache_creation")
                if breakdown is not None:
                    for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
                        outcome.usage[name] = breakdown.get(name) or 0
            elif kind == "message_delta":
                data = loads(sse.data)
                outcome.stop_reason = data["delta"].get("stop_reason") or ""
                # message_delta usage is cumulative: overwrite, never add.
                outcome.usage["output_tokens"] = data["usage"]["output_tokens"]
                outcome.final_usage = True
            elif kind == "error":
                raise _stream_error(client, sse, response)


def _events(client, response):
    """The response's server-sent events, undecoded: the SDK's own decoder over the SDK's own
    reading of the body, which turns any failure to read it (either transport) into its
    APIConnectionError or APITimeoutError, as its typed iterator does."""
    return SSEDecoder().aiter_bytes(async_iter_response_bytes(response, client))


def _stream_error(client, sse, response) -> anthropic.APIStatusError:
    """The status error the SDK's own stream iterator raises for an `error` event."""
    try:
        body = json.loads(sse.data)
        message = f"{body}"
    except ValueError:
        body, message = sse.data, sse.data or f"Error code: {response.status_code}"
    return client._make_status_error(message, body=body, response=response)


def error_kind(exc: BaseException) -> str:
    """Classify a failure for the user-facing message and the record."""
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, breaker.CircuitOpen):
        return "unavailable"
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
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


RETRYABLE_KINDS = {"rate_limited", "overloaded", "server_error", "timeout", "connection"}
OUTAGE_KINDS = {"overloaded", "server_error", "timeout", "connection"}


def retry_delay(attempt: int, exc: BaseException) -> float:
    """Honour retry-after; else exponential backoff with full jitter."""
    response = getattr(exc, "response", None)
    if response is not None and getattr(exc, "status_code", 200) != 200:
        headers = response.headers
        try:
            if "retry-after-ms" in headers:
                return float(headers["retry-after-ms"]) / 1000
            if "retry-after" in headers:
                return float(headers["retry-after"])
        except ValueError:
            pass
    ceiling = min(settings.CLAUDE_RETRY_MAX_DELAY, settings.CLAUDE_RETRY_BASE_DELAY * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def stream_with_retries(
    *,
    request: ReplyRequest,
    generation: Generation,
    relay: DeltaRelay,
    outcome: ReplyOutcome,
    gated: bool = True,
    breaker_state: dict | None = None,
) -> None:
    """One call to Claude, retried while nothing new was shown; the breaker gates each try
    (the fallback model is not gated: it is what takes over while the breaker is open).
    `breaker_state`: the breaker's keys as just read for the first try (`breaker.allow`)."""
    attempt = 0
    while True:
        probing = await breaker.allow(breaker_state) if gated else False
        breaker_state = None  # a retry reads it again
        shown = generation.length
        outcome.attempts += 1
        outcome.connected = False
        try:
            await stream_reply(
                request=request, relay=relay, outcome=outcome, started=generation.started
            )
        except BaseException as exc:
            kind = error_kind(exc) if isinstance(exc, Exception) else "stopped"
            if kind in OUTAGE_KINDS and gated:
                await asyncio.shield(breaker.record_failure())
            elif probing and not outcome.connected:
                # A probe that ended without a verdict (stopped, a 4xx) must not keep
                # everyone else failing fast: the next caller may probe.
                await asyncio.shield(breaker.abandon_probe())
            if not isinstance(exc, Exception):
                raise
            delay = retry_delay(attempt, exc)
            if (
                kind not in RETRYABLE_KINDS
                or generation.length != shown  # text was shown: keep it, don't start over
                or attempt >= settings.CLAUDE_MAX_RETRIES
                or delay > settings.CLAUDE_RETRY_AFTER_MAX
            ):
                raise
            attempt += 1
            logger.info("retrying reply %s (%s) in %.2f s", generation.reply_id, kind, delay)
            await asyncio.sleep(delay)
            continue
        return


async def listen_for_stop(generation: Generation) -> None:
    """Cancel the reply when a stop request for it arrives (from any process)."""
    layer = get_channel_layer()
    group = control_group_name(generation.conversation_id)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    try:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == "reply.stop" and message.get("message_id") in (
                None,
                generation.reply_id,
            ):
                generation.cancel()
                return
    finally:
        await asyncio.shield(layer.group_discard(group, channel))


def stop_key(reply_id: int) -> str:
    return f"chatsite:reply:{reply_id}:stop"


async def generate_reply(
    *, request: ReplyRequest, generation: Generation, slots: asyncio.Semaphore | None = None
) -> ReplyOutcome:
    """Run the stream, the relay and the stop listener; always end with a final status."""
    relay = DeltaRelay(generation, group_name(generation.conversation_id))
    # With the in-memory layer a stop cancels the task directly (turns.stop_replies).
    stop_task = (
        None
        if tabs.reaches_every_tab(relay.layer)
        else asyncio.create_task(listen_for_stop(generation))
    )
    outcome = ReplyOutcome(model=request.model)
    try:
        async with slots or contextlib.nullcontext():
            # A stop that came before the listener was subscribed (waiting for a slot), read
            # with the breaker's state: one trip to the cache before the request.
            stopped = stop_key(generation.reply_id)
            found = await cacheio.call("get_many", [stopped, *breaker.STATE_KEYS])
            if found.get(stopped):
                raise asyncio.CancelledError
            try:
                await stream_with_retries(
                    request=request,
                    generation=generation,
                    relay=relay,
                    outcome=outcome,
                    breaker_state=found,
                )
            except Exception as exc:
                fallback = settings.CLAUDE_FALLBACK_MODEL
                if (
                    error_kind(exc) not in ("overloaded", "unavailable")
                    or not fallback
                    or fallback == request.model
                    or generation.length
                ):
                    raise
                logger.warning(
                    "reply %s: overloaded, falling back to %s", generation.reply_id, fallback
                )
                request.model = fallback
                await stream_with_retries(
                    request=request,
                    generation=generation,
                    relay=relay,
                    outcome=outcome,
                    gated=False,
                )
    except asyncio.CancelledError:
        outcome.status = Message.Status.STOPPED
    except Exception as exc:
        kind = error_kind(exc)
        if kind == "internal":
            logger.exception("reply %s failed", generation.reply_id)
        else:
            logger.warning("reply %s failed: %s", generation.reply_id, kind)
        outcome.status = Message.Status.INTERRUPTED if generation.length else Message.Status.FAILED
        outcome.error_kind = kind
        outcome.request_id = getattr(exc, "request_id", None) or outcome.request_id
        if isinstance(exc, breaker.CircuitOpen):
            outcome.retry_in = exc.retry_in
    finally:
        relay.close()
        waits = [asyncio.shield(relay.drained())]
        if stop_task is not None:
            stop_task.cancel()
            waits.append(stop_task)
        await asyncio.gather(*waits, return_exceptions=True)
    outcome.duration_ms = int((time.monotonic() - generation.started) * 1000)
    logger.info("reply %s %s in %d ms", generation.reply_id, outcome.status, outcome.duration_ms)
    return outcome


def apply_outcome(
    reply: Message, outcome: ReplyOutcome, text: str, *, counted: bool = True
) -> list[str]:
    """Copy the outcome onto the reply; return the fields to save.

    A reply's share of later prompts is its output_tokens (when the whole text came from
    this one call; a continued reply keeps an estimate).
    """
    output = outcome.usage.get("output_tokens")
    reply.tokens = output if counted and output else None
    reply.tokens_exact = reply.tokens is not None
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
        "cache_read_input_tokens", "finished_at", "tokens", "tokens_exact",
    ]  # fmt: skip
