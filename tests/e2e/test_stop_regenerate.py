"""Stop a streaming reply, reload, then regenerate it."""

import re

from playwright.sync_api import Page, expect

from fakeanthropic import Scripted
from tests.factories import PASSWORD, ConversationFactory, UserFactory


def log_in(page: Page, app_url: str, username: str) -> None:
    page.goto(f"{app_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_stop_reload_and_regenerate(page: Page, app_url, fake_api):
    user = UserFactory()
    conversation = ConversationFactory(user=user)
    fake_api.script(
        Scripted(text="endless " * 400, tokens_per_second=30),
        Scripted(text="A **fresh** answer."),
    )
    log_in(page, app_url, user.username)
    page.goto(f"{app_url}/c/{conversation.pk}/")
    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")

    page.get_by_label("Message", exact=True).fill("Write forever")
    page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator("article.message.assistant").last
    expect(reply.locator(".content.streaming")).to_contain_text("endless")
    page.get_by_role("button", name="Stop").click()
    expect(reply).to_have_attribute("data-status", "stopped")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(reply).to_contain_text("Stopped.")

    page.reload()
    stopped = page.locator("article.message.assistant").last
    expect(stopped).to_have_attribute("data-status", "stopped")
    expect(stopped).to_contain_text("endless")
    stopped.get_by_role("button", name="Regenerate").click()

    fresh = page.locator("article.message.assistant").last
    expect(fresh).to_have_attribute("data-status", "complete")
    expect(fresh.locator("strong")).to_have_text("fresh")
    expect(page.locator("article.message.assistant")).to_have_count(2)
    expect(page.locator("article.message.assistant").first).to_have_attribute(
        "data-status", "stopped"
    )
    assert re.search(r"endless", page.locator("article.message.assistant").first.inner_text())
