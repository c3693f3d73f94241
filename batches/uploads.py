"""Read an uploaded JSONL or CSV file of prompts; report every bad row by its line number.

JSONL: one JSON object per line, ``{"custom_id"?, "prompt" | "messages", "system"?,
"max_tokens"?, "temperature"?}``. CSV: a header row with a ``prompt`` column and optional
``custom_id``, ``system`` and ``max_tokens`` columns (other columns are ignored).
Nothing is sent anywhere until the whole file is valid.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

MAX_TOKENS_CEILING = 64_000
MAX_REPORTED_ERRORS = 50
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
JSONL_FIELDS = ("custom_id", "prompt", "messages", "system", "max_tokens", "temperature")
CSV_FIELDS = ("custom_id", "prompt", "system", "max_tokens")


@dataclass(frozen=True)
class ParsedRow:
    """One valid row: its line in the file and what to send."""

    line: int
    custom_id: str
    messages: list[dict[str, Any]]
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None


class UploadInvalid(Exception):
    """The file cannot be used; `problems` are user-facing lines ("Line 3: ...")."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def add(self, line: int | None, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(f"Line {line}: {message}" if line else message)

    def raise_if_any(self) -> None:
        if self.count:
            problems = list(self.items)
            if self.count > len(problems):
                problems.append(f"…and {self.count - len(problems):,} more problems.")
            raise UploadInvalid(problems)


class RowError(ValueError):
    """One row's problem (its message is shown after "Line N: ")."""


def parse_upload(name: str, data: bytes) -> list[ParsedRow]:
    """Parse and validate the whole file; raise UploadInvalid listing the bad lines."""
    if len(data) > settings.BATCH_MAX_UPLOAD_BYTES:
        raise UploadInvalid(
            [f"The file is {len(data):,} bytes; the limit is {settings.BATCH_MAX_UPLOAD_BYTES:,}."]
        )
    problems = _Problems()
    lines = _decode_lines(data, problems)
    problems.raise_if_any()
    text_lines = [line for line in lines if line.strip()]
    if not text_lines:
        raise UploadInvalid(["The file has no rows."])
    if _is_csv(name, text_lines[0]):
        rows = _parse_csv(lines, problems)
    else:
        rows = _parse_jsonl(lines, problems)
    _check_ids(rows, problems)
    problems.raise_if_any()
    if not rows:
        raise UploadInvalid(["The file has no rows."])
    return rows


def _decode_lines(data: bytes, problems: _Problems) -> list[str]:
    """UTF-8 lines (a BOM is dropped); undecodable or binary lines are problems."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.add(number, "is not UTF-8 text.")
            line = ""
        if "\x00" in line:
            problems.add(number, "contains a NUL byte (is this a binary file?).")
            line = ""
        lines.append(line.removesuffix("\r"))
    return lines


def _is_csv(name: str, first_line: str) -> bool:
    lower = name.lower()
    if lower.endswith(".csv"):
        return True
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return False
    return not first_line.lstrip().startswith("{")


def _too_many_rows(count: int) -> bool:
    return count > settings.BATCH_MAX_ROWS


def _parse_jsonl(lines: list[str], problems: _Problems) -> list[ParsedRow]:
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if _too_many_rows(len(rows) + 1):
            raise UploadInvalid(
                [f"The file has more than {settings.BATCH_MAX_ROWS:,} rows, the limit."]
            )
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(number, f"is not valid JSON ({exc.msg}, column {exc.colno}).")
            continue
        try:
            rows.append(_jsonl_row(number, item))
        except RowError as exc:
            problems.add(number, str(exc))
    return rows


def _jsonl_row(number: int, item: Any) -> ParsedRow:
    if not isinstance(item, dict):
        raise RowError('must be a JSON object like {"prompt": "..."}.')
    unknown = sorted(set(item) - set(JSONL_FIELDS))
    if unknown:
        raise RowError(f"unknown field {unknown[0]!r} (allowed: {', '.join(JSONL_FIELDS)}).")
    if ("prompt" in item) == ("messages" in item):
        raise RowError('needs either "prompt" or "messages" (not both).')
    if "prompt" in item:
        messages = [{"role": "user", "content": _text(item["prompt"], "prompt")}]
    else:
        messages = _messages(item["messages"])
    system = _text(item["system"], "system", allow_empty=True) if "system" in item else None
    row = ParsedRow(
        line=number,
        custom_id=_custom_id(item.get("custom_id"), number),
        messages=messages,
        system=system,
        max_tokens=_max_tokens(item.get("max_tokens")),
        temperature=_temperature(item.get("temperature")),
    )
    _check_size(row)
    return row


def _parse_csv(lines: list[str], problems: _Problems) -> list[ParsedRow]:
    reader = csv.reader(io.StringIO("\n".join(lines), newline=""), strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise UploadInvalid(["Line 1: the CSV file needs a header row."]) from None
    columns = [name.strip().lower() for name in header]
    if "prompt" not in columns:
        raise UploadInvalid(['Line 1: the CSV header has no "prompt" column.'])
    index = {name: columns.index(name) for name in CSV_FIELDS if name in columns}
    rows: list[ParsedRow] = []
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(start, f"is not valid CSV ({exc}).")
            break
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if _too_many_rows(len(rows) + 1):
            raise UploadInvalid(
                [f"The file has more than {settings.BATCH_MAX_ROWS:,} rows, the limit."]
            )
        try:
            rows.append(_csv_row(number, record, index))
        except RowError as exc:
            problems.add(number, str(exc))
    return rows


def _csv_row(number: int, record: list[str], index: dict[str, int]) -> ParsedRow:
    def cell(name: str) -> str:
        at = index.get(name)
        return record[at] if at is not None and at < len(record) else ""

    max_tokens = cell("max_tokens").strip()
    if max_tokens:
        try:
            max_tokens_value = int(max_tokens)
        except ValueError:
            raise RowError(f"max_tokens {max_tokens!r} is not a whole number.") from None
    else:
        max_tokens_value = None
    system = cell("system")
    row = ParsedRow(
        line=number,
        custom_id=_custom_id(cell("custom_id").strip() or None, number),
        messages=[{"role": "user", "content": _text(cell("prompt"), "prompt")}],
        system=system if system.strip() else None,
        max_tokens=_max_tokens(max_tokens_value),
    )
    _check_size(row)
    return row


def _text(value: Any, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RowError(f"{name} must be text.")
    if not allow_empty and not value.strip():
        raise RowError(f"{name} is empty.")
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise RowError("messages must be a non-empty list.")
    messages = []
    for position, message in enumerate(value, start=1):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise RowError(f'message {position} must be {{"role": ..., "content": ...}}.')
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise RowError(f'message {position}: role must be "user" or "assistant".')
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, dict) or block.get("type") != "text":
                    raise RowError(f"message {position}: only text content blocks are allowed.")
                _text(block.get("text"), f"message {position} text")
        else:
            _text(content, f"message {position} content")
        messages.append({"role": role, "content": content})
    if messages[0]["role"] != "user":
        raise RowError("the first message must be the user's.")
    return messages


def _custom_id(value: Any, number: int) -> str:
    if value is None:
        return f"row-{number}"
    if not isinstance(value, str) or not CUSTOM_ID.match(value):
        raise RowError("custom_id must be 1 to 64 letters, digits, _ or -.")
    return value


def _max_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError("max_tokens must be a whole number.")
    if not 1 <= value <= MAX_TOKENS_CEILING:
        raise RowError(f"max_tokens must be between 1 and {MAX_TOKENS_CEILING:,}.")
    return value


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RowError("temperature must be a number.")
    if not 0 <= value <= 1:
        raise RowError("temperature must be between 0 and 1.")
    return float(value)


def row_text(row: ParsedRow) -> str:
    """All the text a row sends (for size checks)."""
    parts = [row.system or ""]
    for message in row.messages:
        content = message["content"]
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(block["text"] for block in content)
    return "".join(parts)


def _check_size(row: ParsedRow) -> None:
    size = len(row_text(row))
    if size > settings.MESSAGE_MAX_CHARS:
        raise RowError(f"is {size:,} characters long; the limit is {settings.MESSAGE_MAX_CHARS:,}.")


def _check_ids(rows: list[ParsedRow], problems: _Problems) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row.custom_id in seen:
            problems.add(
                row.line,
                f"custom_id {row.custom_id!r} is already used on line {seen[row.custom_id]}.",
            )
        else:
            seen[row.custom_id] = row.line
