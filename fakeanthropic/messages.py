"""POST /v1/messages and /v1/messages/count_tokens."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .cache import CacheError
from .httputil import JSON_CT, Send, dumps, make_id, send_bytes, send_error, send_json
from .scripting import ERROR_MESSAGES, Plan, Scripted, error_type_for, make_plan
from .sse import DropConnection, stream_message, wait_stall
from .tokens import input_tokens

if TYPE_CHECKING:
    from .app import FakeAnthropic

_ROLES = ("user", "assistant")


def validate(body: Any, *, need_max_tokens: bool = True) -> str | None:
    """An invalid_request_error message, or None when the body looks like a real request."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model: Field required" if model is None else "model: Input should be a string"
    if need_max_tokens:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            return "max_tokens: Field required"
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: Input should be a valid integer greater than or equal to 1"
    messages = body.get("messages")
    if messages is None:
        return "messages: Field required"
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        if message.get("role") not in _ROLES:
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        if isinstance(content, list):
            if not content and i != len(messages) - 1:
                return f"messages.{i}: all messages must have non-empty content"
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    return f"messages.{i}.content.{j}.type: Field required"
        elif not isinstance(content, str):
            return f"messages.{i}.content: Input should be a valid string or list"
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return "system: Input should be a valid string or list"
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return "tools: Input should be a valid list"
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return "stream: Input should be a valid boolean"
    return None


def fault_headers(script: Scripted) -> list[tuple[bytes, bytes]]:
    headers = []
    if script.retry_after is not None:
        secs = script.retry_after
        text = str(int(secs)) if float(secs).is_integer() else repr(float(secs))
        headers.append((b"retry-after", text.encode()))
        headers.append((b"retry-after-ms", str(int(secs * 1000)).encode()))
    if script.should_retry is not None:
        headers.append((b"x-should-retry", b"true" if script.should_retry else b"false"))
    return headers


def message_json(msg_id: str, model: str, plan: Plan, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": plan.text}],
        "model": model,
        "stop_reason": plan.stop_reason,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": plan.output_tokens},
    }


async def handle_count_tokens(send: Send, body: Any, request_id: str) -> None:
    problem = validate(body, need_max_tokens=False)
    if problem:
        await send_error(send, 400, "invalid_request_error", problem, request_id)
        return
    await send_json(send, 200, {"input_tokens": input_tokens(body)}, request_id)


async def handle_messages(
    app: FakeAnthropic,
    send: Send,
    body: Any,
    *,
    api_key: str,
    request_id: str,
    t0: float,
) -> None:
    problem = validate(body)
    if problem:
        await send_error(send, 400, "invalid_request_error", problem, request_id)
        return
    try:
        cache_plan = app.cache.plan(body, api_key)
    except CacheError as exc:
        await send_error(send, 400, "invalid_request_error", str(exc), request_id)
        return

    plan = make_plan(body, app.next_script())
    script = plan.script
    base_headers = [(b"request-id", request_id.encode()), *app.ratelimit.get()]

    if script.status is not None and script.status >= 400:
        await wait_stall(script.stall_seconds)
        error_type = script.error_type or error_type_for(script.status)
        message = script.error_message or ERROR_MESSAGES.get(error_type, "Error")
        extra = fault_headers(script)
        if script.status == 429:
            extra += app.ratelimit.get()
        await send_error(send, script.status, error_type, message, request_id, extra)
        return

    model = body["model"]
    msg_id = make_id("msg")
    usage = cache_plan.usage(plan.output_tokens)
    ttft = app.ttft if script.ttft is None else script.ttft
    tps = app.tokens_per_second if script.tokens_per_second is None else script.tokens_per_second
    tpd = app.tokens_per_delta
    extra = base_headers + fault_headers(script)

    if body.get("stream"):
        await stream_message(
            send,
            plan,
            t0=t0,
            msg_id=msg_id,
            model=model,
            usage=usage,
            ttft=ttft,
            tokens_per_second=tps,
            tokens_per_delta=tpd,
            headers=extra,
            on_start=cache_plan.commit,
        )
        return

    # Non-streaming: answer once the whole reply would have been generated.
    await wait_stall(script.stall_seconds)
    n_deltas = -(-len(plan.pieces) // max(1, tpd))
    interval = tpd / tps if tps > 0 else 0.0
    done_at = t0 + ttft + max(0, n_deltas - 1) * interval
    delay = done_at - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)
    if script.error_after_tokens is not None:
        await send_error(send, 529, "overloaded_error", "Overloaded", request_id, extra)
        return
    payload = dumps(message_json(msg_id, model, plan, usage))
    if script.drop_after_tokens is not None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [JSON_CT, *extra, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload[:20], "more_body": True})
        raise DropConnection
    cache_plan.commit()
    await send_bytes(send, 200, payload, [JSON_CT, *extra])
