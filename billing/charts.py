"""Server-rendered SVG charts (pygal) for the spend dashboard: no JavaScript, no CDN."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
STYLE_ATTRIBUTE = re.compile(r' style="[^"]*"')  # CSP allows no inline style attributes
STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#333333",
    foreground_subtle="#777777",
    colors=("#417690", "#c2410c", "#79aec8", "#f0a868", "#5b8c5a", "#8e6c8a"),
    font_family='system-ui, -apple-system, "Segoe UI", sans-serif',
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=14,
    tooltip_font_size=12,
)
BASE = {
    "js": [],  # pygal's tooltips load a script from a CDN: never
    "disable_xml_declaration": True,
    "style": STYLE,
    "width": 860,
    "height": 300,
    "margin": 12,
    "show_y_guides": True,
    "no_data_text": "No calls in this range",
    "print_values": False,
    "legend_at_bottom": True,
    "truncate_legend": 40,
    "truncate_label": -1,
}
HALF = {"width": 560, "height": 340}


def _svg(chart: pygal.graph.graph.Graph, *, label: str, nonce: object | None) -> SafeString:
    """Render inline: no script (pygal's config) or style attribute (its hidden tooltip,
    hidden by dashboard.css instead); the CSP nonce on its <style>."""
    svg = STYLE_ATTRIBUTE.sub("", SCRIPT.sub("", chart.render(is_unicode=True)))
    if nonce is not None:  # not "if nonce": a LazyNonce is falsy until first used
        svg = svg.replace("<style", f'<style nonce="{escape(str(nonce))}"', 1)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return mark_safe(svg)  # noqa: S308 - pygal escapes every label and value it draws


def _day(day) -> str:
    return f"{day.day} {day:%b}"


def _sparse_labels(labels: Sequence[str], most: int = 16) -> dict:
    """Show at most `most` x labels so long ranges stay readable."""
    step = max(1, -(-len(labels) // most))
    return {"x_labels": list(labels), "x_labels_major_every": step, "show_minor_x_labels": False}


def spend_by_day_chart(rows: list[dict], *, nonce: object | None = None) -> SafeString:
    """Bars: USD spent per day."""
    labels = [_day(row["day"]) for row in rows]
    chart = pygal.Bar(**BASE | {"width": 1100}, show_legend=False, **_sparse_labels(labels))
    chart.title = "Spend per day (USD)"
    chart.value_formatter = lambda v: f"${v:,.2f}"
    chart.add("Spend", [float(row["cost"]) for row in rows])
    return _svg(chart, label="Spend per day in US dollars", nonce=nonce)


def spend_by_model_chart(rows: list[dict], *, nonce: object | None = None) -> SafeString:
    """Horizontal bars: USD per model."""
    chart = pygal.HorizontalBar(**BASE | HALF | {"height": max(200, 110 + 36 * len(rows))})
    chart.title = "Spend per model (USD)"
    chart.value_formatter = lambda v: f"${v:,.2f}"
    for row in rows:
        chart.add(row["model"], [float(row["cost"])])
    return _svg(chart, label="Spend per model in US dollars", nonce=nonce)


def error_rate_chart(rows: list[dict], *, nonce: object | None = None) -> SafeString:
    """Line: share of calls that failed, per day."""
    labels = [_day(row["day"]) for row in rows]
    chart = pygal.Line(**BASE | HALF, show_legend=False, **_sparse_labels(labels, 8))
    chart.title = "Error rate per day (%)"
    chart.value_formatter = lambda v: f"{v:.1f}%"
    chart.add(
        "Error rate", [round(row["error_rate"] * 100, 2) if row["calls"] else None for row in rows]
    )
    return _svg(chart, label="Share of calls that failed per day", nonce=nonce)


def latency_chart(rows: list[dict], *, nonce: object | None = None) -> SafeString:
    """Lines: p50 and p95 of time to first token and of duration, per day, in seconds."""
    labels = [_day(row["day"]) for row in rows]
    chart = pygal.Line(**BASE | HALF, **_sparse_labels(labels, 8))
    chart.title = "Latency per day (seconds)"
    chart.value_formatter = lambda v: f"{v:.2f} s"
    for key, name in (
        ("ttft_p50", "Time to first token p50"),
        ("ttft_p95", "Time to first token p95"),
        ("duration_p50", "Duration p50"),
        ("duration_p95", "Duration p95"),
    ):
        chart.add(name, [None if row[key] is None else row[key] / 1000 for row in rows])
    return _svg(chart, label="Latency percentiles per day", nonce=nonce)
