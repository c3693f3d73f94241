"""Filters that format money, token counts, shares and latencies."""

from __future__ import annotations

from decimal import Decimal

from django import template

from billing.budgets import format_usd

register = template.Library()


@register.filter
def usd(value: Decimal | None) -> str:
    """$1,234.56 (more decimals under a cent); "unpriced" for None."""
    if value is None:
        return "unpriced"
    return format_usd(Decimal(value))


@register.filter
def count(value: int | None) -> str:
    """12,345."""
    return f"{int(value or 0):,}"


@register.filter
def percent(value: float | None) -> str:
    """A share (0..1) as 12.3%."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}%"


@register.filter
def seconds(ms: float | None) -> str:
    """Milliseconds as 1.23 s."""
    if ms is None:
        return "—"
    return f"{ms / 1000:.2f} s"
