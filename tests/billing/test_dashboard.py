"""The admin's spend dashboard and CSV export, and the user's own usage page."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from billing.budgets import reserve, settle
from tests.billing.conftest import SONNET, spend
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("billing_dashboard")
CSV = reverse("billing_dashboard_csv")
NOV = {"start": "2026-11-01", "end": "2026-11-30"}


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


@pytest.fixture
def admin_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def spend_admin(db):
    """A staff member given only the permission to view the ledger."""
    person = UserFactory(is_staff=True)
    person.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    return person


def csv_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_anonymous_is_sent_to_the_admin_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_normal_user_is_refused(client, user):
    client.force_login(user)
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert client.get(CSV).status_code == 302


def test_staff_without_the_spend_permission_is_forbidden(client):
    reviewer = UserFactory(is_staff=True)
    client.force_login(reviewer)
    assert client.get(DASHBOARD).status_code == 403
    assert client.get(CSV).status_code == 403


def test_staff_with_the_permission_and_superusers_see_it(client, spend_admin, admin_user):
    for person in (spend_admin, admin_user):
        client.force_login(person)
        response = client.get(DASHBOARD)
        assert response.status_code == 200
        assert "Spend dashboard" in response.content.decode()


def test_dashboard_shows_spend_by_user_model_conversation_and_cache_savings(client, admin_user):
    ada = UserFactory(username="ada")
    trip = ConversationFactory(user=ada, title="Trip to Lisbon")
    spend(ada, "0.30", at=at("2026-11-03"), conversation=trip)
    cached = reserve(user=ada, model=SONNET, prompt_tokens=0, max_tokens=0, at=at("2026-11-04"))
    settle(
        cached,
        usage={"cache_read_input_tokens": 1_000_000, "output_tokens": 0},
        model=SONNET,
        status="complete",
        conversation=trip,
        ttft_ms=800,
        duration_ms=4_000,
    )
    client.force_login(admin_user)

    page = client.get(DASHBOARD, NOV).content.decode()

    users = page[page.index('id="users-table"') :]
    assert re.search(r">ada</a></th>\s*<td class=\"num\">2</td>", users)
    assert "$0.60" in users  # 0.30 of output + 1M cache-read tokens at $0.30
    assert 'id="total-spend">$0.60<' in page
    assert 'id="cache-savings">$2.70<' in page  # 1M x ($3 - $0.30) per million
    top = page[page.index('id="top-conversations"') :]
    assert "Trip to Lisbon" in top and "$0.60" in top
    assert "claude-sonnet-4-6" in page[page.index('id="by-model"') :]


def test_charts_are_inline_svg_without_scripts(client, admin_user):
    spend(UserFactory(), "0.03", at=at("2026-11-03"))
    client.force_login(admin_user)
    page = client.get(DASHBOARD, NOV).content.decode()
    for chart in ("chart-by-day", "chart-by-model", "chart-errors", "chart-latency"):
        section = page[page.index(f'id="{chart}"') :]
        assert section.split(">", 1)[1].lstrip().startswith("<svg")
    assert "<script" not in page[page.index('id="billing-dashboard"') :]
    assert "kozea.github.io" not in page  # pygal's CDN tooltips are off


def test_chart_styles_carry_the_pages_csp_nonce(client, admin_user):
    spend(UserFactory(), "0.03", at=at("2026-11-03"))
    client.force_login(admin_user)
    response = client.get(DASHBOARD, NOV)
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    dashboard = response.content.decode().split('id="billing-dashboard"', 1)[1]
    styles = re.findall(r"<style[^>]*>", dashboard)
    assert len(styles) == 4
    assert all(f'nonce="{nonce}"' in tag for tag in styles), (nonce, styles)
    assert ' style="' not in dashboard  # inline style attributes are refused by the CSP


def test_unpriced_calls_are_shown_as_unpriced(client, admin_user):
    person = UserFactory()
    reservation = reserve(
        user=person, model="claude-fable-5-2", prompt_tokens=5, max_tokens=5, at=at("2026-11-05")
    )
    settle(reservation, usage={"output_tokens": 9}, model="claude-fable-5-2", status="complete")
    client.force_login(admin_user)

    page = client.get(DASHBOARD, NOV).content.decode()

    assert 'id="unpriced-count">1<' in page
    unpriced = page[page.index('id="unpriced-models"') :]
    assert "claude-fable-5-2" in unpriced
    assert f"{reverse('admin:billing_price_add')}?model=claude-fable-5-2" in unpriced


def test_the_date_range_counts_whole_months_and_edge_days_exactly(client, admin_user):
    ada = UserFactory(username="ada")
    for day, dollars in (
        ("2026-10-31", "0.03"),
        ("2026-11-01", "0.30"),
        ("2026-11-30", "3.00"),
        ("2026-12-01", "30.00"),
    ):
        spend(ada, dollars, at=at(day))
    client.force_login(admin_user)

    def cost(start, end):
        rows = csv_rows(client.get(CSV, {"start": start, "end": end}))
        return Decimal(rows[0]["cost usd"]) if rows else Decimal(0)

    assert cost("2026-10-31", "2026-12-01") == Decimal("33.33")
    assert cost("2026-11-01", "2026-11-30") == Decimal("3.30")
    assert cost("2026-11-02", "2026-11-30") == Decimal("3.00")
    assert cost("2026-10-01", "2026-11-01") == Decimal("0.33")
    assert cost("2026-12-02", "2026-12-31") == 0
    page = client.get(DASHBOARD, {"start": "2026-11-02", "end": "2026-11-30"}).content.decode()
    assert 'id="total-spend">$3.00<' in page


def test_an_inverted_range_is_reported_and_this_month_shown(client, admin_user):
    client.force_login(admin_user)
    page = client.get(DASHBOARD, {"start": "2026-11-30", "end": "2026-11-01"}).content.decode()
    assert "The start date is after the end date." in page
    today = timezone.now().astimezone(dt.UTC).date()
    assert f'name="start" value="{today:%Y-%m}-01"' in page


def test_users_sort_and_search(client, admin_user):
    spend(UserFactory(username="zed"), "0.30", at=at("2026-11-03"))
    spend(UserFactory(username="amy", email="amy@lab.example"), "0.03", at=at("2026-11-03"))
    spend(UserFactory(username="bob"), "3.00", at=at("2026-11-03"))
    client.force_login(admin_user)

    def names(**params):
        return [row["username"] for row in csv_rows(client.get(CSV, NOV | params))]

    assert names() == ["bob", "zed", "amy"]  # dearest first by default
    assert names(sort="user") == ["amy", "bob", "zed"]
    assert names(sort="cost") == ["amy", "zed", "bob"]
    assert names(q="lab.example") == ["amy"]
    page = client.get(DASHBOARD, NOV | {"sort": "user"}).content.decode()
    assert page.index(">amy</a>") < page.index(">bob</a>") < page.index(">zed</a>")


def test_csv_export_parses_with_every_token_kind_and_defuses_formulas(client, admin_user):
    person = UserFactory(username="=HYPERLINK(evil)")
    reservation = reserve(
        user=person, model=SONNET, prompt_tokens=10, max_tokens=10, at=at("2026-11-09")
    )
    settle(
        reservation,
        usage={
            "input_tokens": 11,
            "cache_creation_input_tokens": 50,
            "ephemeral_5m_input_tokens": 20,
            "ephemeral_1h_input_tokens": 30,
            "cache_read_input_tokens": 40,
            "output_tokens": 60,
        },
        model=SONNET,
        status="failed",
        error_kind="overloaded",
    )
    client.force_login(admin_user)

    response = client.get(CSV, NOV)

    assert response["Content-Type"].startswith("text/csv")
    assert "spend-by-user-20261101-20261130.csv" in response["Content-Disposition"]
    [row] = csv_rows(response)
    assert row["username"] == "'=HYPERLINK(evil)"
    assert (row["calls"], row["errors"]) == ("1", "1")
    assert [
        row[f"{k} tokens"]
        for k in ("input", "cache write 5m", "cache write 1h", "cache read", "output")
    ] == ["11", "20", "30", "40", "60"]
    # 11 x 3 + 20 x 3.75 + 30 x 6 + 40 x 0.30 + 60 x 15 = 1,200 micro-dollars
    assert Decimal(row["cost usd"]) == Decimal("0.0012")


# --- My usage ----------------------------------------------------------------------------


def test_my_usage_shows_spend_budget_remaining_and_my_conversations_only(client, user, settings):
    now = timezone.now()
    mine = ConversationFactory(user=user, title="My research")
    spend(user, "0.30", at=now, conversation=mine)
    spend(UserFactory(), "3.00", at=now, conversation=ConversationFactory(title="Not mine"))
    settings.BUDGET_USER_MONTHLY_USD = Decimal(10)
    client.force_login(user)

    page = client.get(reverse("my_usage")).content.decode()

    assert 'id="spent">$0.30<' in page
    assert 'id="budget">$10.00<' in page
    assert 'id="remaining">$9.70<' in page
    assert "My research" in page and "Not mine" not in page
    assert "budget-message" not in page


def test_my_usage_warns_from_80_percent_and_blocks_at_100(client, user, settings):
    now = timezone.now()
    spend(user, "0.81", at=now)
    settings.BUDGET_USER_MONTHLY_USD = Decimal(1)
    client.force_login(user)
    page = client.get(reverse("my_usage")).content.decode()
    assert "You have used 81% of your $1.00 monthly budget" in page
    assert "budget-warning" in page

    settings.BUDGET_USER_MONTHLY_USD = Decimal("0.50")
    page = client.get(reverse("my_usage")).content.decode()
    resets = (now.astimezone(dt.UTC).date().replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    assert (
        f"You have used your $0.50 monthly budget. It resets on {resets.day} {resets:%B %Y} (UTC)."
        in page
    )
    assert "budget-blocked" in page


def test_my_usage_needs_a_login(client):
    response = client.get(reverse("my_usage"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_unlimited_budget_is_said_plainly(client, user):
    client.force_login(user)
    page = client.get(reverse("my_usage")).content.decode()
    assert 'id="budget">Unlimited<' in page
    assert "No calls this month." in page
