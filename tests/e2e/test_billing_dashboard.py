"""An admin reads the spend dashboard; a user over budget sees the block message."""

import datetime as dt
import re
from decimal import Decimal

from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.budgets import reserve, settle
from billing.models import UserBudget
from tests.billing.conftest import SONNET
from tests.factories import PASSWORD, ConversationFactory, UserFactory


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def call(user, *, at, output_tokens, conversation=None, model=SONNET):
    reservation = reserve(user=user, model=model, prompt_tokens=0, max_tokens=0, at=at)
    return settle(
        reservation,
        usage={
            "input_tokens": 1_200,
            "cache_read_input_tokens": 30_000,
            "output_tokens": output_tokens,
        },
        model=model,
        status="complete",
        ttft_ms=650,
        duration_ms=5_200,
        conversation=conversation,
    )


def test_admin_filters_the_dashboard_and_sees_charts_and_a_users_spend(page: Page, app_url):
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    grace = UserFactory(username="grace")
    earlier = timezone.now() - dt.timedelta(days=40)
    conversation = ConversationFactory(user=grace, title="Compiler notes")
    for day in range(3):
        # 1,200 x $3 + 30,000 x $0.30 + 20,000 x $15 per million = $0.3126 a call
        call(
            grace,
            at=earlier + dt.timedelta(days=day),
            output_tokens=20_000,
            conversation=conversation,
        )
    call(grace, at=earlier, output_tokens=10, model="claude-fable-5-2")

    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    log_in(page, f"{app_url}/admin/login/?next=/admin/billing/dashboard/", admin.username)
    expect(page.get_by_role("heading", name="Spend dashboard")).to_be_visible()
    users = page.locator("#users-table")
    expect(users).to_contain_text("No users with calls in this range")  # this month: nothing yet

    page.get_by_label("From", exact=True).fill(f"{earlier - dt.timedelta(days=2):%Y-%m-%d}")
    page.get_by_label("To", exact=True).fill(f"{earlier + dt.timedelta(days=5):%Y-%m-%d}")
    page.get_by_role("button", name="Apply").click()

    expect(page).to_have_url(re.compile(r"start=\d{4}-\d\d-\d\d&end="))
    grace_row = users.locator("tbody tr", has_text="grace")
    expect(grace_row).to_contain_text("$0.9378")  # 3 x $0.3126
    expect(grace_row.locator("td").first).to_have_text("4")
    for chart in ("#chart-by-day", "#chart-by-model", "#chart-errors", "#chart-latency"):
        expect(page.locator(f"{chart} svg")).to_be_visible()
    bars = page.locator("#chart-by-day svg .series rect")
    assert bars.count() >= 3
    expect(page.locator("#top-conversations")).to_contain_text("Compiler notes")
    expect(page.locator("#unpriced-models")).to_contain_text("claude-fable-5-2")
    expect(page.locator("#cache-savings")).to_have_text("$0.243")  # 90,000 x $2.70/M

    assert refused == []  # the charts' styles carry the page's CSP nonce

    page.locator("#users-table thead").get_by_role("link", name="User").click()
    expect(page).to_have_url(re.compile(r"sort=user"))
    expect(users.locator("tbody tr").first).to_contain_text("grace")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert "grace" in download.value.path().read_text()


def test_a_user_over_budget_sees_when_it_resets(page: Page, app_url):
    person = UserFactory()
    call(person, at=timezone.now(), output_tokens=40_000)  # $0.6126
    UserBudget.objects.create(user=person, monthly_usd=Decimal("0.50"))

    log_in(page, f"{app_url}/accounts/login/", person.username)
    page.get_by_role("link", name="My usage").click()

    message = page.get_by_role("alert")
    expect(message).to_contain_text("You have used your $0.50 monthly budget.")
    expect(message).to_contain_text(re.compile(r"It resets on 1 \w+ \d{4} \(UTC\)\."))
    expect(page.locator("#remaining")).to_have_text("$0.00")
