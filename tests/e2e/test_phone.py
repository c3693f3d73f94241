"""On a phone (390 by 844): the AI notice, the sidebar behind a button, chatting, focus."""

from pathlib import Path

from playwright.sync_api import Page, expect

from conversations.models import Message
from fakeanthropic import Scripted
from tests.factories import PASSWORD, ConversationFactory, MessageFactory, UserFactory

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-phone.png"
PHONE = {"width": 390, "height": 844}
REPLY = (
    "Three easy day trips from **Lisbon**:\n\n"
    "1. **Sintra**: palaces in the hills, 40 min by train\n"
    "2. **Cascais**: beaches and a seaside walk\n"
    "3. **Évora**: Roman temple and old town\n\n"
    "Start early for Sintra; it gets busy by 11."
)


def fits_the_screen(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_phone_notice_sidebar_and_chat(page: Page, app_url, fake_api):
    page.set_viewport_size(PHONE)
    user = UserFactory(username="maria")
    ConversationFactory(user=user, title="Birthday ideas")
    trip = ConversationFactory(user=user, title="Weekend in Lisbon")
    MessageFactory(conversation=trip, content="We land in Lisbon on Friday morning.")
    MessageFactory(
        conversation=trip,
        role=Message.Role.ASSISTANT,
        content="Lovely! Drop your bags at the hotel and walk up to the **Alfama** viewpoint.",
        model="claude-sonnet-4-6",
    )
    fake_api.script(Scripted(text=REPLY, tokens_per_second=200))

    page.goto(f"{app_url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # First visit: the AI notice; dismissed once, it stays gone.
    notice = page.get_by_role("region", name="Replies here are written by AI")
    expect(notice).to_be_visible()
    notice.get_by_role("button", name="Got it").click()
    expect(notice).to_have_count(0)

    # The sidebar sits behind a button.
    toggle = page.get_by_role("button", name="Conversations")
    sidebar = page.get_by_role("complementary", name="Conversations")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_label("Search conversations")).to_be_focused()
    sidebar.get_by_role("link", name="Weekend in Lisbon").click()

    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")
    expect(sidebar).to_be_hidden()
    expect(page.locator("#ai-notice")).to_have_count(0)
    box = page.get_by_label("Message", exact=True)
    expect(box).to_be_in_viewport()
    assert fits_the_screen(page)

    box.fill("Any day trips you'd suggest?")
    box.press("Enter")
    reply = page.locator("article.message.assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply.locator("ol li")).to_have_count(3)
    expect(reply.get_by_text("AI-generated")).to_be_visible()
    expect(reply).to_be_in_viewport()
    expect(box).to_be_in_viewport()
    composer = page.locator("#composer").bounding_box()
    assert composer["y"] + composer["height"] <= PHONE["height"]
    assert fits_the_screen(page)
    page.screenshot(path=str(SCREENSHOT))

    # Keyboard focus is visible.
    box.focus()
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
