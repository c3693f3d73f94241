"""The user's "My usage" page and the admin's spend dashboard (with its CSV export)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator

from django import forms
from django.contrib import admin
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.middleware.csp import get_nonce
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import charts, reports
from billing.budgets import global_budget
from billing.models import utc_day
from billing.usage import user_usage

DASHBOARD_PERMISSION = "billing.view_ledgerentry"
USERS_PER_PAGE = 50
LONGEST_RANGE = dt.timedelta(days=3 * 366)


@require_GET
@login_required
def my_usage(request: HttpRequest) -> HttpResponse:
    """This month's spend, budget and what is left; spend by model and by conversation."""
    return TemplateResponse(request, "billing/usage.html", {"usage": user_usage(request.user)})


class DashboardFilters(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=100, label="User")
    sort = forms.CharField(required=False, max_length=20)

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date is after the end date.")
            if end - start > LONGEST_RANGE:
                raise forms.ValidationError("Choose a range of at most three years.")
        return data

    def period(self, today: dt.date) -> reports.DateRange:
        """The range asked for; this UTC month by default or when the input is invalid."""
        default = reports.DateRange.month_of(today, data_until=today)
        if not self.is_valid():
            return default
        start = self.cleaned_data.get("start") or default.start
        end = self.cleaned_data.get("end") or max(default.end, start)
        return reports.DateRange(start, end, data_until=today)

    @property
    def ordering(self) -> str:
        value = (self.cleaned_data.get("sort") if self.is_valid() else "") or "-cost"
        return value if value.lstrip("-") in reports.USER_SORTS else "-cost"

    @property
    def search_text(self) -> str:
        return (self.cleaned_data.get("q") or "").strip() if self.is_valid() else ""


def _filters(request: HttpRequest) -> tuple[DashboardFilters, reports.DateRange]:
    form = DashboardFilters(request.GET)
    return form, form.period(utc_day(timezone.now()))


@require_GET
@permission_required(DASHBOARD_PERMISSION, raise_exception=True)
def spend_dashboard(request: HttpRequest) -> HttpResponse:
    """Spend by day, model, user and conversation; cache savings, errors, latency, unpriced."""
    form, period = _filters(request)
    nonce = get_nonce(request)
    with reports.roomy_aggregates():
        by_day = reports.spend_by_day(period)
        by_model = reports.spend_by(period, "model")
        latency = reports.latency_by_day(period)
        users = UserPage(
            reports.spend_by_user(period, search=form.search_text, sort=form.ordering),
            request.GET.get("page"),
        )
        today = utc_day(timezone.now())
        context = admin.site.each_context(request) | {
            "title": "Spend dashboard",
            "form": form,
            "period": period,
            "presets": _presets(today),
            "totals": reports.totals(period),
            "by_model": by_model,
            "by_purpose": reports.spend_by(period, "purpose"),
            "unpriced": reports.unpriced_models(by_model),
            "latency": reports.latency_overall(period),
            "top_conversations": reports.top_conversations(period),
            "users": users,
            "sort": form.ordering,
            "headers": _sort_headers(form.ordering),
            "search": form.search_text,
            "month": reports.month_status(today, global_budget()),
            "charts": {
                "by_day": charts.spend_by_day_chart(by_day, nonce=nonce),
                "by_model": charts.spend_by_model_chart(by_model, nonce=nonce),
                "errors": charts.error_rate_chart(by_day, nonce=nonce),
                "latency": charts.latency_chart(latency, nonce=nonce),
            },
        }
    return TemplateResponse(request, "admin/billing/dashboard.html", context)


USER_COLUMNS = [
    ("user", "User"),
    ("calls", "Calls"),
    ("errors", "Errors"),
    ("prompt", "Prompt tokens"),
    ("output", "Output tokens"),
    ("cost", "Cost"),
    ("savings", "Cache savings"),
    ("unpriced", "Unpriced calls"),
]


def _sort_headers(sort: str) -> list[dict]:
    """Each column's header: a click sorts by it (descending first), a second click reverses."""
    descending = sort.startswith("-")
    headers = []
    for key, label in USER_COLUMNS:
        active = sort.lstrip("-") == key
        if active:
            following = key if descending else f"-{key}"
        else:
            following = key if key == "user" else f"-{key}"
        aria = ("descending" if descending else "ascending") if active else "none"
        headers.append({"label": label, "sort": following, "active": active, "aria": aria})
    return headers


class UserPage:
    """One page of the user table, without a COUNT over the whole aggregate."""

    def __init__(self, rows, number: str | None) -> None:
        try:
            self.number = max(int(number or 1), 1)
        except ValueError:
            self.number = 1
        offset = (self.number - 1) * USERS_PER_PAGE
        fetched = list(rows[offset : offset + USERS_PER_PAGE + 1])
        self.has_next = len(fetched) > USERS_PER_PAGE
        self.has_previous = self.number > 1
        self.rows = reports.with_names(fetched[:USERS_PER_PAGE])

    def __iter__(self):
        return iter(self.rows)

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def _presets(today: dt.date) -> list[tuple[str, reports.DateRange]]:
    this_month = reports.DateRange.month_of(today, data_until=today)
    last_month = reports.DateRange.month_of(this_month.start - dt.timedelta(days=1))
    return [
        ("This month", this_month),
        ("Last month", last_month),
        ("Last 7 days", reports.DateRange(today - dt.timedelta(days=6), today)),
        ("Last 30 days", reports.DateRange(today - dt.timedelta(days=29), today)),
        ("Last 90 days", reports.DateRange(today - dt.timedelta(days=89), today)),
    ]


CSV_COLUMNS = [
    ("user_id", "user id"),
    ("username", "username"),
    ("email", "email"),
    ("calls", "calls"),
    ("errors", "errors"),
    ("unpriced_calls", "unpriced calls"),
    ("input_tokens", "input tokens"),
    ("cache_write_5m_tokens", "cache write 5m tokens"),
    ("cache_write_1h_tokens", "cache write 1h tokens"),
    ("cache_read_tokens", "cache read tokens"),
    ("output_tokens", "output tokens"),
    ("cost", "cost usd"),
    ("cache_savings", "cache savings usd"),
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def safe_cell(value: object) -> object:
    """Keep a spreadsheet from running a user-chosen name as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_rows(rows) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([label for _, label in CSV_COLUMNS])
    for row in rows:
        yield writer.writerow([safe_cell(row[key]) for key, _ in CSV_COLUMNS])


@require_GET
@permission_required(DASHBOARD_PERMISSION, raise_exception=True)
def spend_by_user_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The dashboard's user table (every page, same filters and order) as CSV."""
    form, period = _filters(request)
    with reports.roomy_aggregates():
        rows = list(
            reports.spend_by_user(period, search=form.search_text, sort=form.ordering, names=True)
        )
    response = StreamingHttpResponse(_csv_rows(rows), content_type="text/csv; charset=utf-8")
    name = f"spend-by-user-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
