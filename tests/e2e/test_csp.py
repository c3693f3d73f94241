"""The Content-Security-Policy in Chromium: the pages work under it with zero violations
(socket included), and it does refuse inline script."""

import re

from playwright.sync_api import Browser, Page, expect

from fakeanthropic import Scripted
from tests.factories import PASSWORD, ConversationFactory, UserFactory

# Runs before any page script: records every violation the browser reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.effectiveDirective} ${e.blockedURI} ${where}`);
});
"""


def violations(page: Page) -> list[str]:
    page.wait_for_load_state("networkidle")
    return page.evaluate("window.__violations")


def csp_page(browser: Browser, app_url: str) -> tuple[Page, list[str]]:
    context = browser.new_context(base_url=app_url)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    refused: list[str] = []  # the console says it too, also for what the event misses
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    return page, refused


def test_a_chat_journey_runs_with_zero_csp_violations(browser: Browser, app_url, fake_api):
    user = UserFactory()
    ConversationFactory(user=user, title="Under the policy")
    page, refused = csp_page(browser, app_url)

    page.goto("/accounts/login/")
    response = page.request.get(f"{app_url}/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert violations(page) == []
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert violations(page) == [], "home page"

    page.get_by_role("link", name="Under the policy").click()
    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")  # connect-src
    fake_api.script(Scripted(text="Allowed **markdown** and `code`.\n\n```python\nx = 1\n```"))
    page.get_by_label("Message", exact=True).fill("Does the socket work under the CSP?")
    page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator("article.message.assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator("strong")).to_have_text("markdown")

    # htmx requests and swaps: rate the reply, rename, dismiss the AI notice.
    reply.get_by_role("button", name="Good reply").click()
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed", "true")
    page.locator("#conversation-title").fill("Renamed under the policy")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator(".sidebar")).to_contain_text("Renamed under the policy")
    page.get_by_role("button", name=re.compile("Got it")).click()
    expect(page.locator("#ai-notice")).to_have_count(0)
    page.get_by_text("Model, system prompt and document").click()
    assert violations(page) == [], "chat page"

    for path in ("/search/?q=socket", "/usage/", "/accounts/profile/"):
        page.goto(path)
        assert violations(page) == [], path
    assert refused == []


def test_staff_pages_run_with_zero_csp_violations(browser: Browser, app_url):
    admin = UserFactory(is_staff=True, is_superuser=True)
    page, refused = csp_page(browser, app_url)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()
    for path in (
        "/admin/",
        "/admin/billing/dashboard/",
        "/admin/conversations/conversation/",
        "/admin/accounts/user/",
        "/admin/ops/operationspanel/",
        "/review/",
    ):
        page.goto(path)
        assert violations(page) == [], path
    assert refused == []


def test_the_policy_refuses_inline_script(browser: Browser, app_url):
    page, _ = csp_page(browser, app_url)
    page.goto("/accounts/login/")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__xss = 1";
          document.body.appendChild(s);
          const d = document.createElement("div");
          d.innerHTML = '<img src="data:," onerror="window.__xss = 2">';
          document.body.appendChild(d);
        }"""
    )
    page.wait_for_function("window.__violations.length >= 2")
    assert page.evaluate("window.__xss") is None
    assert all(v.startswith("script-src") for v in violations(page))
