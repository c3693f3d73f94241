"""One record per call to Claude: a log event, the metrics, the window and the alert.

Never pass message content here: only ids, counts, times and kinds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog
from asgiref.sync import sync_to_async

from ops import alerts, metrics, window

logger = structlog.get_logger("ops.calls")


def log_claude_call(
    *,
    request_id: str,
    user_id: int | None,
    conversation_id: int | None,
    model: str,
    usage: dict[str, int],
    cost: Decimal | None,
    ttft_ms: float | None,
    duration_ms: float | None,
    stop_reason: str,
    status: str,
    error_kind: str,
    purpose: str = "chat",
) -> None:
    """Log one call to Claude, count it in the metrics, and check the error-rate alert.

    `usage` has the Messages API's fields (input_tokens, cache_creation_input_tokens,
    cache_read_input_tokens, output_tokens); `error_kind` is empty unless the call failed.
    The cache work may block (Redis): from async code call `alog_claude_call`.
    """
    error = bool(error_kind)
    metrics.record_call(
        model=model,
        purpose=purpose,
        status=status,
        usage=usage,
        cost=cost,
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
        error_kind=error_kind,
    )
    event = {
        "request_id": request_id,
        "user_id": user_id,
        "conversation_id": conversation_id,
        "model": model,
        "purpose": purpose,
        "status": status,
        "stop_reason": stop_reason,
        "error_kind": error_kind,
        **{kind + "_tokens": usage.get(field) or 0 for field, kind in metrics.TOKEN_KINDS.items()},
        "cost_usd": None if cost is None else str(cost),
        "ttft_ms": None if ttft_ms is None else round(ttft_ms),
        "duration_ms": None if duration_ms is None else round(duration_ms),
    }
    (logger.warning if error else logger.info)("claude.call", **event)
    try:
        window.record(
            {key: event[key] for key in ("request_id", "model", "purpose", "status", "error_kind")}
            | {"ttft_ms": ttft_ms, "duration_ms": duration_ms},
            error=error,
        )
        alerts.check_error_rate(after_error=error)
    except Exception as exc:  # the cache is down: the call itself must not fail for it
        logger.warning("ops.window_unavailable", error=type(exc).__name__)


async def alog_claude_call(**call: Any) -> None:
    """log_claude_call (same keywords) for async code: the cache and mail work leave the loop."""
    await sync_to_async(log_claude_call, thread_sensitive=False)(**call)
