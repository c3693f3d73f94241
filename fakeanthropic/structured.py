"""Structured outputs: a JSON reply that satisfies the request's `output_config` schema.

The SDK's `messages.parse(output_format=Model)` sends
`output_config: {"format": {"type": "json_schema", "schema": {...}}}` and validates the
reply text against the model. The fake builds a small deterministic instance of the schema,
with string fields drawn from the prompt (a title-like phrase), so parsing succeeds.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*")
_TAGS = re.compile(r"<[^>]*>")
_USER = re.compile(r"<user>(.*?)</user>", re.S)
_STOP = {"a", "an", "the", "to", "of", "and", "or", "me", "my", "i", "you", "please", "can"}


def schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def phrase(prompt: str, limit: int = 6) -> str:
    """A short title-like phrase from the prompt."""
    quoted = _USER.search(prompt)  # a title prompt quotes the conversation: use its question
    prompt = _TAGS.sub(" ", quoted.group(1) if quoted else prompt)
    words = [w for w in _WORDS.findall(prompt) if w.lower() not in _STOP][:limit]
    return " ".join(words).capitalize() or "Untitled conversation"


def _instance(schema: dict[str, Any], prompt: str, defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _instance(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), prompt, defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _instance(schema[key][0], prompt, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _instance(sub, prompt, defs) for name, sub in props.items()}
    if kind == "array":
        return [_instance(schema.get("items", {}), prompt, defs)]
    if kind == "integer":
        return max(0, int(schema.get("minimum", 0)))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = phrase(prompt)
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def structured_reply(schema: dict[str, Any], prompt: str) -> str:
    """Deterministic JSON text matching schema."""
    defs = schema.get("$defs", schema.get("definitions", {}))
    return json.dumps(_instance(schema, prompt, defs))
