"""Token counts of one call to Claude, read from the API's usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _count(value: Any) -> int:
    """A token count from usage: a missing or null count is 0, never negative."""
    return max(int(value or 0), 0)


@dataclass(frozen=True)
class Tokens:
    """The five kinds of tokens a call is billed for."""

    input: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    output: int = 0

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any]) -> Tokens:
        """Read the API's usage dict.

        Keys: input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
        output_tokens, and optionally the cache_creation breakdown ephemeral_5m_input_tokens /
        ephemeral_1h_input_tokens (flat or under "cache_creation"). Without a breakdown every
        cache write is a 5-minute write; a breakdown that does not cover all of
        cache_creation_input_tokens leaves the rest as 5-minute writes.
        """
        breakdown = usage.get("cache_creation") or {}
        if not isinstance(breakdown, Mapping):
            breakdown = {}
        creation = _count(usage.get("cache_creation_input_tokens"))
        write_1h = _count(
            usage.get("ephemeral_1h_input_tokens", breakdown.get("ephemeral_1h_input_tokens"))
        )
        write_5m = _count(
            usage.get("ephemeral_5m_input_tokens", breakdown.get("ephemeral_5m_input_tokens"))
        )
        creation = max(creation, write_5m + write_1h)
        return cls(
            input=_count(usage.get("input_tokens")),
            cache_write_5m=creation - write_1h,
            cache_write_1h=write_1h,
            cache_read=_count(usage.get("cache_read_input_tokens")),
            output=_count(usage.get("output_tokens")),
        )

    @property
    def prompt(self) -> int:
        """All input-side tokens: what the prompt weighed in total."""
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read


def usage_dict(usage: Any) -> dict[str, int]:
    """Turn an SDK `Usage` object (or the raw usage dict) into settle()'s `usage` argument."""
    if isinstance(usage, Mapping):
        data = dict(usage)
    elif hasattr(usage, "model_dump"):
        data = usage.model_dump()
    else:
        data = {}
    result = {
        key: _count(data.get(key))
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    breakdown = data.get("cache_creation")
    if isinstance(breakdown, Mapping):
        result["ephemeral_5m_input_tokens"] = _count(breakdown.get("ephemeral_5m_input_tokens"))
        result["ephemeral_1h_input_tokens"] = _count(breakdown.get("ephemeral_1h_input_tokens"))
    return result
