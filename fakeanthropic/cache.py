"""Prompt-cache simulation.

Exact semantics
---------------
1. The request is flattened into blocks (tools -> system blocks -> message content blocks;
   a string ``content`` or string ``system`` is one block), see ``tokens.flatten_request``.
   ``P(i)`` is the prefix token count up to and including block ``i`` (overheads included,
   so ``P(last) == total input tokens``).
2. A block carrying ``cache_control`` (``{"type": "ephemeral"}`` = 5 min, ``"ttl": "1h"`` =
   1 hour) is a breakpoint. More than 4 breakpoints -> 400 invalid_request_error.
3. ``H(i)`` hashes the model and blocks ``0..i`` (each block as canonical JSON without its
   ``cache_control``, a bare string as a text block, with its kind/role and whether it
   starts a message).
4. Lookup: for every breakpoint ``b``, the positions ``b, b-1, ..., b-20`` (the breakpoint
   and up to 20 earlier block boundaries) are checked for a live entry ``H(j)``. The largest
   ``j`` found over all breakpoints is the read point ``R``: ``cache_read_input_tokens =
   P(R)``. No hit: ``R = -1``, nothing read.
5. Write: ``L`` is the last breakpoint whose prefix is cacheable (``P(L)`` >= the model's
   minimum: 1024 tokens; 4096 for ``claude-haiku-4-5``+ and ``claude-opus-4-5``+; 2048 for
   older haiku). If ``L > R``: ``cache_creation_input_tokens = P(L) - P(R)``, split between
   ``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``: the tokens after ``R``
   up to each breakpoint are charged to the TTL of the first breakpoint that covers them.
   Prefixes below the minimum are neither read nor written (no error).
6. ``input_tokens = total - cache_read - cache_creation``.
7. When the response starts (``CachePlan.commit``), an entry ``H(b)`` is stored for every
   cacheable breakpoint ``b >= R`` with expiry ``now + ttl``, and the entry read at ``R``
   is refreshed to ``now + its ttl`` (never shortened). Entries are keyed per
   (api key, model); expired entries are dropped lazily. Time comes from the injected clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .tokens import REQUEST_OVERHEAD, flatten_request

MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
TTL_5M = 300.0
TTL_1H = 3600.0

_MODEL_RE = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?!\d)")


class CacheError(ValueError):
    """An invalid cache_control setup (-> 400)."""


def min_cacheable_tokens(model: str) -> int:
    """Minimum prefix length that can be cached for ``model``."""
    m = _MODEL_RE.search(model or "")
    if not m:
        return 1024
    family, major, minor = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    version = (major, minor)
    if family == "haiku":
        return 4096 if version >= (4, 5) else 2048
    if family == "opus" and version >= (4, 5):
        return 4096
    return 1024


def _ttl_of(cache_control: Any) -> float:
    if not isinstance(cache_control, dict) or cache_control.get("type", "ephemeral") != "ephemeral":
        raise CacheError("cache_control.type: Input should be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl == "5m":
        return TTL_5M
    if ttl == "1h":
        return TTL_1H
    raise CacheError("cache_control.ttl: Input should be '5m' or '1h'")


@dataclass
class _Entry:
    expires_at: float
    ttl: float


@dataclass
class CachePlan:
    """The cache outcome of one request; ``commit()`` applies its writes."""

    total: int
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    _commit: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def creation(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def uncached(self) -> int:
        return self.total - self.read - self.creation

    def commit(self) -> None:
        if self._commit is not None:
            self._commit()
            self._commit = None

    def usage(self, output_tokens: int, service_tier: str = "standard") -> dict[str, Any]:
        return {
            "input_tokens": self.uncached,
            "cache_creation_input_tokens": self.creation,
            "cache_read_input_tokens": self.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.write_5m,
                "ephemeral_1h_input_tokens": self.write_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": service_tier,
        }


def _canonical(kind: str, block: Any, starts_message: bool) -> bytes:
    if isinstance(block, str):  # "content": "hi" is the same prompt as a text block "hi"
        block = {"type": "text", "text": block}
    elif isinstance(block, dict) and "cache_control" in block:
        block = {k: v for k, v in block.items() if k != "cache_control"}
    return json.dumps(
        [kind, starts_message, block], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode()


class PromptCache:
    """Cache entries keyed by (api key, model, prefix hash)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._entries: dict[tuple[str, str, bytes], _Entry] = {}
        self._sweep_at = 4096  # purge expired entries when the table grows past this

    def _maybe_sweep(self, now: float) -> None:
        if len(self._entries) < self._sweep_at:
            return
        self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}
        self._sweep_at = max(4096, 2 * len(self._entries))

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: tuple[str, str, bytes], now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def plan(self, body: dict[str, Any], api_key: str) -> CachePlan:
        """Compute read/write split of ``body``; raises CacheError for bad cache_control."""
        blocks = flatten_request(body)
        prefix: list[int] = []
        running = 0
        breakpoints: list[tuple[int, float]] = []
        for i, (_, block, tokens, _) in enumerate(blocks):
            running += tokens
            prefix.append(running)
            if isinstance(block, dict) and block.get("cache_control") is not None:
                breakpoints.append((i, _ttl_of(block["cache_control"])))
        total = running if blocks else REQUEST_OVERHEAD
        if len(breakpoints) > MAX_BREAKPOINTS:
            raise CacheError(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {len(breakpoints)}."
            )
        if not breakpoints:
            return CachePlan(total=total)

        model = str(body.get("model", ""))
        minimum = min_cacheable_tokens(model)
        last_bp = breakpoints[-1][0]
        hashes: list[bytes] = []
        h = hashlib.blake2b(model.encode(), digest_size=16)
        for kind, block, _, starts in blocks[: last_bp + 1]:
            h.update(_canonical(kind, block, starts))
            hashes.append(h.copy().digest())

        now = self.clock()
        read_at = -1
        read_entry: _Entry | None = None
        for b, _ in breakpoints:
            for j in range(b, max(-1, b - LOOKBACK_BLOCKS - 1), -1):
                if j <= read_at:
                    break
                if prefix[j] < minimum:
                    break
                entry = self._live((api_key, model, hashes[j]), now)
                if entry is not None:
                    read_at, read_entry = j, entry
                    break

        plan = CachePlan(total=total, read=prefix[read_at] if read_at >= 0 else 0)
        writes: list[tuple[int, float]] = []
        covered = read_at
        for b, ttl in breakpoints:
            if prefix[b] < minimum or b < read_at:
                continue
            writes.append((b, ttl))
            if b > covered:
                tokens = prefix[b] - (prefix[covered] if covered >= 0 else 0)
                if ttl == TTL_1H:
                    plan.write_1h += tokens
                else:
                    plan.write_5m += tokens
                covered = b

        def commit() -> None:
            at = self.clock()
            self._maybe_sweep(at)
            if read_entry is not None:
                read_entry.expires_at = max(read_entry.expires_at, at + read_entry.ttl)
            for b, ttl in writes:
                key = (api_key, model, hashes[b])
                entry = self._entries.get(key)
                if entry is None or entry.expires_at <= at:
                    self._entries[key] = _Entry(at + ttl, ttl)
                else:
                    entry.ttl = max(entry.ttl, ttl)
                    entry.expires_at = max(entry.expires_at, at + ttl)

        plan._commit = commit
        return plan
