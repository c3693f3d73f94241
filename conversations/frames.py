"""Read one chat socket frame safely: what is wrong with it, in words for the user.

The consumer parses every frame with `parse_frame` before any service sees it; the
services still validate their own arguments (length, emptiness, ownership).
"""

from __future__ import annotations

import json

MAX_ID = 2**63 - 1  # bigint ids


class FrameRejected(Exception):
    """The frame cannot be used; the text says why, for the user."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _check_text(value: object) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FrameRejected("The message contains characters that are not valid text.") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def _message_id(value: object) -> int:
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise FrameRejected("That message could not be found.")
    return value


def parse_frame(text_data: str) -> dict:
    """The frame as a dict, message_id as an int; raise FrameRejected with a reason."""
    try:
        frame = json.loads(text_data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # deep nesting overflows the parser
        raise FrameRejected("The message could not be read. Please try again.") from exc
    if not isinstance(frame, dict):
        raise FrameRejected("The message could not be read. Please try again.")
    _check_text(frame)
    if frame.get("message_id") in ("", None):
        frame.pop("message_id", None)  # an empty form field: no message named
    else:
        frame["message_id"] = _message_id(frame["message_id"])
    return frame
