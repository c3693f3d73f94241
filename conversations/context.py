"""The conversation manager: which messages go to Claude, within an exact token budget.

Counting. A message's `tokens` is its share of the prompt. An assistant reply's share is its
`output_tokens`. A user message's share is derived from the API's own usage: after a reply,
total input T = overhead + Σ(shares of the other messages sent) + share(newest user message),
so the newest user message's share = T - overhead - Σ(others). The overhead (system prompt,
document, per-request constant) is learnt the same way whenever the system prompt changes.
Until a real figure exists a share is an estimate (`tokens_exact` False).

Trimming. The context is the newest whole user→assistant turns, starting with a user turn
and always holding the newest user message. While the prompt fits the budget the start of
the context never moves, so every turn reads the previous turn's prefix from the prompt
cache. When it would not fit, the start jumps forward in one step so that the prompt is at
most `CONTEXT_TRIM_TARGET` of the budget: the prefix then stays stable for many turns again,
instead of shifting every turn (and missing the cache every turn) as the guide's manager does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

CACHE_CONTROL = {"type": "ephemeral"}
MESSAGE_OVERHEAD = 4  # tokens around each message in an estimate


class Counted(Protocol):
    id: int
    role: str
    tokens: int | None
    content: str


class ContextTooLarge(Exception):
    """The newest message alone does not fit the conversation's budget."""


def estimate_tokens(text: str) -> int:
    """A conservative estimate until the API's figure exists (about 4 characters a token)."""
    return (len(text) + 2) // 3 + MESSAGE_OVERHEAD


def share(message: Counted) -> int:
    if message.tokens is not None:
        return message.tokens
    return estimate_tokens(message.content)


def overhead_key(*, model: str, system: str, document: str = "") -> str:
    """What the learnt overhead depends on; a change means learning it again."""
    return hashlib.sha256(f"{model}\0{system}\0{document}".encode()).hexdigest()[:32]


def choose_start(
    messages: Sequence[Counted],
    *,
    current_start: int | None,
    budget: int,
    overhead: int,
    target_share: float,
) -> int:
    """Index in `messages` (oldest first, newest user last) where the context starts.

    Keeps the current start while everything from it fits the budget; otherwise moves to
    the oldest user message such that the prompt is within target_share of the budget.
    """
    if not messages or messages[-1].role != "user":
        raise ValueError("the newest message must be the user's")
    newest = share(messages[-1])
    if overhead + newest > budget:
        raise ContextTooLarge(
            f"This message is about {newest:,} tokens; with the system prompt it does not "
            f"fit this conversation's budget of {budget:,} tokens. Shorten it or start a "
            f"conversation with a larger budget."
        )
    start = 0
    if current_start is not None:
        # A message not saved yet (id None) is the newest, after any start.
        start = next(
            (i for i, m in enumerate(messages) if m.id is None or m.id >= current_start), 0
        )
    while messages[start].role != "user":  # the newest message is the user's
        start += 1
    shares = list(map(share, messages[start:]))
    left = sum(shares)  # the prompt's messages from `start` on
    if overhead + left <= budget:
        return start
    target = max(int(budget * target_share), overhead + newest)
    for i in range(start, len(messages)):
        if messages[i].role == "user" and overhead + left <= target:
            return i
        left -= shares[i - start]
    return len(messages) - 1


def document_block(name: str, text: str) -> str:
    return f'<document name="{name}">\n{text}\n</document>'


def system_blocks(system: str, document: str = "") -> list[dict] | None:
    """System prompt then reference document, cached together (the stable head of every
    request: many questions against one document read it from the cache)."""
    blocks = [{"type": "text", "text": text} for text in (system, document) if text]
    if not blocks:
        return None
    blocks[-1]["cache_control"] = CACHE_CONTROL
    return blocks


def sent_messages(turns: Sequence[Counted]) -> list[Counted]:
    """The messages actually sent: whole user→assistant turns, then the newest user message.

    A user message answered several times counts its newest reply; an unanswered user
    message (its reply failed without text) is dropped unless it is the newest.
    """
    out: list[Counted] = []
    pending: Counted | None = None
    purged = False  # the question's text was purged (retention): drop its answers too
    for message in turns:
        if message.role == "user":
            purged = not message.content
            pending = None if purged else message
        elif message.content and not purged:
            if pending is not None:
                out += [pending, message]
                pending = None
            elif out and out[-1].role == "assistant":
                out[-1] = message
    if pending is not None:
        out.append(pending)
    return out


def plain_messages(turns: Sequence[Counted]) -> list[dict]:
    """The turns as the API's role/content pairs, without cache breakpoints (exports)."""
    return [{"role": m.role, "content": m.content} for m in sent_messages(turns)]


def api_messages(sent: Sequence[Counted], *, prefill: str | None = None) -> list[dict]:
    """The API's messages, with a cache breakpoint on the newest one."""
    out = [{"role": m.role, "content": m.content} for m in sent]
    if prefill:
        out.append({"role": "assistant", "content": prefill})
    if out:
        last = out[-1]
        out[-1] = {
            "role": last["role"],
            "content": [{"type": "text", "text": last["content"], "cache_control": CACHE_CONTROL}],
        }
    return out


@dataclass
class ContextPlan:
    """One request's context, and what is needed to learn exact counts from its usage."""

    start_id: int | None  # None until the newest message, if it is the start, is saved
    messages: list[dict]
    system: list[dict] | None
    known_tokens: int  # Σ shares of the sent messages other than the newest user message
    overhead: int
    overhead_key: str
    overhead_known: bool
    newest_user_estimate: int
    prompt_estimate: int
    budget: int
    trimmed: bool = False
    learn: bool = True  # False when the last message is a prefill, not the user's
    newest_user_id: int | None = None
    reservation: object = None  # the budget hold for this request (billing.Reservation)
    question: str = ""  # the newest user message's text (the auto title is made from it)

    def saved_newest(self, message_id: int) -> None:
        """The newest user message, planned before it was saved, now has its id."""
        if self.start_id is None:
            self.start_id = message_id
        if self.newest_user_id is None:
            self.newest_user_id = message_id


def plan_context(
    *,
    messages: Sequence[Counted],
    model: str,
    system: str,
    budget: int,
    current_start: int | None,
    learnt_overhead: int | None,
    learnt_overhead_key: str,
    prefill: str | None = None,
    document: str = "",
) -> ContextPlan:
    """Decide the context of the next request (messages: oldest first, newest user last)."""
    key = overhead_key(model=model, system=system, document=document)
    known = learnt_overhead is not None and learnt_overhead_key == key
    overhead = learnt_overhead if known else estimate_tokens(system + document) + 8
    prefill_tokens = estimate_tokens(prefill) if prefill else 0
    index = choose_start(
        messages,
        current_start=current_start,
        budget=budget,
        overhead=overhead + prefill_tokens,  # a continued reply's text is sent too
        target_share=settings.CONTEXT_TRIM_TARGET,
    )
    turns = messages[index:]
    sent = sent_messages(turns)
    newest = share(sent[-1])
    known_tokens = sum(map(share, sent[:-1]))
    return ContextPlan(
        start_id=turns[0].id,
        messages=api_messages(sent, prefill=prefill),
        system=system_blocks(system, document),
        known_tokens=known_tokens,
        overhead=overhead,
        overhead_key=key,
        overhead_known=known,
        newest_user_estimate=newest,
        prompt_estimate=overhead + known_tokens + newest + prefill_tokens,
        budget=budget,
        trimmed=current_start is not None and (turns[0].id is None or turns[0].id > current_start),
        learn=prefill is None,
        newest_user_id=sent[-1].id,
    )


def learn_from_usage(plan: ContextPlan, total_input: int) -> tuple[int, int]:
    """Return (newest user message's exact share, overhead) from a request's total input."""
    if plan.overhead_known:
        return max(1, total_input - plan.overhead - plan.known_tokens), plan.overhead
    # First request with this system prompt: the newest message keeps its estimate and the
    # overhead absorbs the rest; every later turn is exact by difference.
    overhead = max(0, total_input - plan.known_tokens - plan.newest_user_estimate)
    return plan.newest_user_estimate, overhead
