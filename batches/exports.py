"""A job's results as JSONL or CSV: one line per row of the uploaded file, in its order."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import sync_to_async

from batches.models import BatchJob, JobRow

CSV_COLUMNS = [
    "custom_id", "line", "status", "text", "stop_reason", "model", "input_tokens",
    "output_tokens", "cost_usd", "error_type", "error_message", "same_as",
]  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PAGE = 500


def result_page(job: BatchJob, *, after_line: int, first_row_of: dict[int, str]) -> list[dict]:
    """Up to PAGE rows after `after_line`, each with its result (identical rows share one)."""
    rows = (
        JobRow.objects.filter(job=job, line__gt=after_line)
        .select_related("request__result")
        .defer("request__params")
        .order_by("line")[:PAGE]
    )
    page = []
    for row in rows:
        result = getattr(row.request, "result", None)
        same_as = first_row_of.setdefault(row.request_id, row.custom_id)
        duplicate = same_as != row.custom_id
        page.append(
            {
                "custom_id": row.custom_id,
                "line": row.line,
                "status": result.kind if result else "pending",
                "text": result.text if result else "",
                "stop_reason": result.stop_reason if result else "",
                "model": result.model if result else "",
                "input_tokens": result.input_tokens if result else 0,
                "output_tokens": result.output_tokens if result else 0,
                # A duplicate row reuses the first one's answer and costs nothing more.
                "cost_usd": (
                    str(result.cost)
                    if result and result.cost is not None and not duplicate
                    else None
                ),
                "error_type": result.error_type if result else "",
                "error_message": result.error_message if result else "",
                "same_as": same_as if duplicate else None,
            }
        )
    return page


async def _pages(job: BatchJob, encode: Callable[[list[dict]], str]) -> AsyncIterator[str]:
    first_row_of: dict[int, str] = {}
    after = 0
    while True:
        page = await sync_to_async(result_page)(job, after_line=after, first_row_of=first_row_of)
        if not page:
            return
        yield encode(page)
        after = page[-1]["line"]


def as_jsonl(job: BatchJob) -> AsyncIterator[str]:
    return _pages(
        job, lambda page: "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in page)
    )


def _cell(value: Any) -> Any:
    """Keep spreadsheets from running model output as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _csv_lines(page: list[dict], *, header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows([_cell(item[name]) for name in CSV_COLUMNS] for item in page)
    return buffer.getvalue()


async def as_csv(job: BatchJob) -> AsyncIterator[str]:
    yield _csv_lines([], header=True)
    async for lines in _pages(job, _csv_lines):
        yield lines
