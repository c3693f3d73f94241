"""Deterministic, regex-based token accounting for the fake Anthropic API.

Splitting rule (``split_tokens``)
---------------------------------
Text is cut into pieces by one regular expression, tried left to right:

* a letter run of at most 5 letters, with one optional leading space (``" token"``, ``"s"``);
* a digit run of at most 3 digits, with one optional leading space;
* a run of at most 2 punctuation/symbol characters, with one optional leading space;
* a whitespace run (the last space before a word is left to that word);
* any other single character.

Every character belongs to exactly one piece, so ``"".join(split_tokens(t)) == t`` always.
English prose comes out at roughly one token per 4 characters (code: ~3).
``count_tokens(t) == len(split_tokens(t))``.

Input tokens of a request (``RequestTokens`` / ``block_tokens``)
----------------------------------------------------------------
The request is flattened into blocks in the order tools -> system -> messages:

* a tool definition counts the tokens of its JSON (keys sorted, ``cache_control`` removed);
* a system string is one block; a system list contributes one block per text block;
* a message whose ``content`` is a string is one block; a list contributes one block each;
* a ``text`` block counts its text; ``tool_use`` its name + JSON input; ``tool_result`` its
  content (string or nested blocks); ``thinking`` its thinking text; ``image`` and
  non-text ``document`` blocks count a flat ``IMAGE_TOKENS``; anything else counts the
  tokens of its JSON.

Then: ``total = REQUEST_OVERHEAD + sum(block tokens) + MESSAGE_OVERHEAD * len(messages)``.
For prefix arithmetic (prompt caching) the request overhead belongs to the first block and a
message's overhead belongs to that message's first block, so the prefix token count at the
last block equals the total.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, NamedTuple

REQUEST_OVERHEAD = 5
MESSAGE_OVERHEAD = 3
IMAGE_TOKENS = 1600

_TOKEN_RE = re.compile(
    r" ?[^\W\d_]{1,5}"  # letters, at most 5, optional leading space
    r"| ?\d{1,3}"  # digits, at most 3
    r"| ?[^\w\s]{1,2}"  # punctuation / symbols, at most 2
    r"|\s+(?!\S)"  # whitespace run, leaving the last space to the next word
    r"|\s+"
    r"|[\s\S]"  # anything else ("_"), one character
)


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into token pieces; their concatenation is exactly ``text``."""
    return _TOKEN_RE.findall(text)


@lru_cache(maxsize=8192)
def _count_cached(text: str) -> int:
    return sum(1 for _ in _TOKEN_RE.finditer(text))


def count_tokens(text: str) -> int:
    """Number of pieces ``split_tokens(text)`` would return."""
    if not text:
        return 0
    if len(text) > 200_000:  # don't pin huge strings in the cache
        return sum(1 for _ in _TOKEN_RE.finditer(text))
    return _count_cached(text)


def _json_tokens(obj: Any) -> int:
    if isinstance(obj, dict) and "cache_control" in obj:
        obj = {k: v for k, v in obj.items() if k != "cache_control"}
    return count_tokens(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def block_tokens(block: Any) -> int:
    """Tokens of one content block (or a bare string)."""
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, dict):
        return _json_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return count_tokens(str(block.get("text", "")))
    if kind == "tool_use" or kind == "server_tool_use":
        return count_tokens(str(block.get("name", ""))) + _json_tokens(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            return 1 + sum(block_tokens(b) for b in content)
        return 1 + count_tokens(str(content))
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        return 50
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            return count_tokens(str(source.get("data", "")))
        if source.get("type") == "content" and isinstance(source.get("content"), list):
            return sum(block_tokens(b) for b in source["content"])
        return IMAGE_TOKENS
    return _json_tokens(block)


def system_blocks(system: Any) -> list[Any]:
    """The system prompt as a list of blocks ([] when absent)."""
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [system]
    if isinstance(system, list):
        return list(system)
    return [system]


def message_blocks(message: dict[str, Any]) -> list[Any]:
    content = message.get("content", "")
    if isinstance(content, list):
        return content
    return [content]


class Block(NamedTuple):
    kind: str  # "tool", "system", "user" or "assistant"
    block: Any
    tokens: int  # including the overheads attributed to this block
    starts_message: bool


def flatten_request(body: dict[str, Any]) -> list[Block]:
    """Blocks in cache order, with their token counts.

    Overheads: the request constant goes to the first block, each message's constant to
    that message's first block.
    """
    out: list[Block] = []
    for tool in body.get("tools") or []:
        out.append(Block("tool", tool, _json_tokens(tool), False))
    for block in system_blocks(body.get("system")):
        out.append(Block("system", block, block_tokens(block), False))
    for message in body.get("messages") or []:
        role = str(message.get("role", "user"))
        blocks = message_blocks(message)
        if not blocks:
            out.append(Block(role, "", MESSAGE_OVERHEAD, True))
            continue
        for i, block in enumerate(blocks):
            first = i == 0
            tokens = block_tokens(block) + (MESSAGE_OVERHEAD if first else 0)
            out.append(Block(role, block, tokens, first))
    if out:
        out[0] = out[0]._replace(tokens=out[0].tokens + REQUEST_OVERHEAD)
    return out


def input_tokens(body: dict[str, Any]) -> int:
    """Total input tokens of a /v1/messages request body (before any cache split)."""
    blocks = flatten_request(body)
    if not blocks:
        return REQUEST_OVERHEAD
    return sum(b.tokens for b in blocks)


def text_of_content(content: Any) -> str:
    """Concatenated text of a message's content (string or list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user message ("" if none)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of_content(message.get("content"))
    return ""
