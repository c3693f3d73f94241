"""Deterministic demo replies, derived from the last user message.

Same input text -> same reply, byte for byte. The default reply (60-120 tokens) quotes a
short part of the prompt and exercises markdown: a heading, bold text, a bullet list and a
fenced python code block. ``long_reply`` makes a ~2000-token reply of several sections,
``filler_reply(n)`` a reply of exactly ``n`` tokens.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from .tokens import split_tokens

DIRECTIVE_RE = re.compile(r"\[\[fake:([a-z0-9_]+)(?:=([^\]]*))?\]\]", re.IGNORECASE)
_UNSAFE = re.compile(r"[`*_#\[\]<>|\\]")
_WORD = re.compile(r"[^\W\d_]+")

_TOPICS = (
    "streaming",
    "caching",
    "latency",
    "markdown",
    "tokens",
    "retries",
    "batches",
    "backpressure",
)
_FILLER = (
    "the fake model keeps a steady pace while it streams words back to the client so that "
    "every delta can be timed and every token counted in a predictable way"
)


def strip_directives(text: str) -> str:
    return DIRECTIVE_RE.sub("", text)


def _snippet(text: str, limit: int = 40) -> str:
    clean = " ".join(_UNSAFE.sub("", strip_directives(text)).split())
    if not clean:
        return "(an empty message)"
    if len(clean) <= limit:
        return clean
    cut = clean[:limit].rsplit(" ", 1)[0] or clean[:limit]
    return cut + "..."


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@lru_cache(maxsize=1024)
def demo_reply(prompt: str) -> str:
    """The default reply to ``prompt`` (roughly 60-120 tokens of markdown)."""
    snippet = _snippet(prompt)
    words = _WORD.findall(strip_directives(prompt))
    longest = max(words, key=len) if words else "nothing"
    topic = _TOPICS[_digest(prompt) % len(_TOPICS)]
    return (
        f"## Re: {snippet}\n\n"
        f"You wrote **{len(words)} words**; this is the fake API talking about *{topic}*.\n\n"
        f"- Your message started with: {snippet}\n"
        f"- The longest word was `{longest[:40]}`\n"
        "- The same prompt always gets this same reply\n\n"
        "```python\n"
        "def echo(prompt: str) -> str:\n"
        f"    return {snippet[:30]!r}\n"
        "```\n"
    )


@lru_cache(maxsize=64)
def long_reply(prompt: str, target_tokens: int = 2000) -> str:
    """A multi-section markdown reply of roughly ``target_tokens`` tokens."""
    snippet = _snippet(prompt)
    seed = _digest(prompt)
    parts = [f"# A long answer about: {snippet}\n\n"]
    count = len(split_tokens(parts[0]))
    section = 0
    while count < target_tokens:
        section += 1
        topic = _TOPICS[(seed + section) % len(_TOPICS)]
        chunk = (
            f"## Part {section}: {topic}\n\n"
            f"This section of the long demo reply talks about **{topic}**. It is deterministic, "
            "so the same prompt gives the same text, and it is long enough for a client to "
            "show a scrolling stream of markdown while it arrives.\n\n"
            f"1. First point about {topic}, with `inline code` and a number: {seed % 997}.\n"
            f"2. Second point about {topic}; a sentence that keeps going for a while.\n"
            f"3. Third point: see section {section} for the {topic} example below.\n\n"
            "```python\n"
            f"def part_{section}(items: list[int]) -> int:\n"
            f'    """Sum the items for {topic}."""\n'
            "    total = 0\n"
            "    for item in items:\n"
            f"        total += item * {section}\n"
            "    return total\n"
            "```\n\n"
        )
        parts.append(chunk)
        count += len(split_tokens(chunk))
    return "".join(parts)


@lru_cache(maxsize=256)
def filler_reply(n: int) -> str:
    """Plain prose of exactly ``n`` tokens (as counted by ``split_tokens``)."""
    if n <= 0:
        return ""
    # Each word is at least one token: n words are enough; cut at a token boundary.
    # Re-splitting such a prefix of letters-and-spaces text gives the same pieces.
    vocab = _FILLER.split()
    words = [vocab[i % len(vocab)] for i in range(n)]
    return "".join(split_tokens(" ".join(words).capitalize())[:n])
