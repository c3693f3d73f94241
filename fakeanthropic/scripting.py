"""Scripted replies, fault injection and prompt directives.

A ``Scripted`` reply (or its JSON form, a dict of the same field names, or a bare string
meaning ``{"text": ...}``) says how the fake answers one /v1/messages request:

==================== =====================================================================
field                meaning
==================== =====================================================================
text                 exact reply text (default: the deterministic demo reply)
tokens               generate a filler reply of exactly this many tokens
output_tokens        report this many output tokens instead of the counted ones
stop_reason          stop reason to report (default end_turn, or max_tokens when cut)
ttft                 seconds before the first text delta (overrides the app setting)
tokens_per_second    pacing override
status               answer with this HTTP error instead (429, 500, 503, 529, 401, 400...)
error_type           error.type of that error body (default from the status)
error_message        error.message of that error body
retry_after          seconds, sent as ``retry-after`` (and ``retry-after-ms``) headers
should_retry         sends ``x-should-retry: true|false``
error_after_tokens   stream this many tokens, then an ``event: error`` overloaded_error
stall                send no bytes for this many seconds (``true`` or < 0: forever)
drop_after_tokens    stream this many tokens, then abort the connection
==================== =====================================================================

Directives in the last user message (``[[fake:NAME]]`` or ``[[fake:NAME=VALUE]]``):
``long`` (~2000-token reply), ``tokens=N``, ``overloaded`` (529), ``midstream_overload``
(error event after a few deltas), ``500``, ``429``, ``503``, ``stall`` (forever),
``stall=S`` (seconds), ``slow`` (ttft 2 s, 5 tokens/s), ``drop`` (abort after a few
deltas), ``batch_error`` and ``batch_expire`` (batch outcomes, see batches.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .replies import DIRECTIVE_RE, demo_reply, filler_reply, long_reply, strip_directives
from .structured import schema_of, structured_reply
from .tokens import last_user_text, split_tokens

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "timeout_error": "Request timed out",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


@dataclass
class Scripted:
    """One scripted reply; see the module docstring for the fields."""

    text: str | None = None
    tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    ttft: float | None = None
    tokens_per_second: float | None = None
    status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    error_after_tokens: int | None = None
    stall: float | bool | None = None
    drop_after_tokens: int | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Scripted:
        if isinstance(obj, Scripted):
            return obj
        if isinstance(obj, str):
            return cls(text=obj)
        if not isinstance(obj, dict):
            raise ValueError(f"a scripted reply must be a string or an object, got {obj!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(obj) - names
        if unknown:
            raise ValueError(f"unknown scripted reply fields: {sorted(unknown)}")
        return cls(**obj)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def merged(self, other: Scripted) -> Scripted:
        """Fields of ``other`` that are set override ours."""
        return dataclasses.replace(self, **other.to_json())

    @property
    def stall_seconds(self) -> float | None:
        """None: no stall; float('inf'): forever."""
        if self.stall is None or self.stall is False:
            return None
        if self.stall is True:
            return float("inf")
        value = float(self.stall)
        return float("inf") if value < 0 else value


def directives(text: str) -> dict[str, str | None]:
    return {m.group(1).lower(): m.group(2) for m in DIRECTIVE_RE.finditer(text)}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def from_directives(found: dict[str, str | None]) -> Scripted:
    s = Scripted()
    if "tokens" in found:
        s.tokens = max(0, _int(found["tokens"], 100))
    if "slow" in found:
        s.ttft, s.tokens_per_second = 2.0, 5.0
    if "overloaded" in found or "529" in found:
        s.status = 529
    if "500" in found:
        s.status = 500
    if "503" in found:
        s.status = 503
    if "429" in found:
        s.status, s.retry_after = 429, 1.0
    if "midstream_overload" in found:
        s.error_after_tokens = _int(found["midstream_overload"], 12)
    if "drop" in found:
        s.drop_after_tokens = _int(found["drop"], 12)
    if "stall" in found:
        try:
            s.stall = float(found["stall"]) if found["stall"] else True
        except ValueError:
            s.stall = True
    return s


@dataclass
class Plan:
    """What one /v1/messages request will get."""

    script: Scripted
    source: str  # the full reply text before any max_tokens cut
    text: str  # the (possibly truncated) reply text
    pieces: list[str]  # token pieces of ``text``
    output_tokens: int
    stop_reason: str
    directives: dict[str, str | None]


def make_plan(body: dict[str, Any], scripted: Scripted | None) -> Plan:
    prompt = last_user_text(body)
    found = directives(prompt) if "[[fake:" in prompt else {}
    script = from_directives(found)
    if scripted is not None:
        script = script.merged(scripted)
    schema = schema_of(body)
    if script.text is not None:
        text = script.text
    elif schema is not None:
        text = structured_reply(schema, strip_directives(prompt))
    elif script.tokens is not None:
        text = filler_reply(script.tokens)
    elif "long" in found:
        text = long_reply(prompt)
    else:
        text = demo_reply(prompt)
    source = text
    pieces = split_tokens(text)
    stop_reason = script.stop_reason or "end_turn"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and len(pieces) > max_tokens:
        pieces = pieces[:max_tokens]
        text = "".join(pieces)
        stop_reason = script.stop_reason or "max_tokens"
    output_tokens = script.output_tokens if script.output_tokens is not None else len(pieces)
    return Plan(script, source, text, pieces, output_tokens, stop_reason, found)
