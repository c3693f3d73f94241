"""A long conversation: scroll back to its first message; search finds an old message."""

import re

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.factories import PASSWORD, ConversationFactory, UserFactory

MESSAGES = 180


def log_in(page: Page, app_url: str, username: str) -> None:
    page.goto(f"{app_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def long_conversation(user, *, title: str = "A long chat", special: dict | None = None):
    conversation = ConversationFactory(user=user, title=title)
    special = special or {}
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role=Message.Role.USER if n % 2 == 0 else Message.Role.ASSISTANT,
            content=special.get(n, f"Message {n}: " + "some words to give it height " * 3),
        )
        for n in range(MESSAGES)
    )
    return conversation, list(conversation.messages.order_by("id").values_list("id", flat=True))


OFFSET = """(id, toTop) => {
  const list = document.getElementById('messages');
  if (toTop) list.scrollTop = 0;
  return document.getElementById('message-' + id).getBoundingClientRect().top
         - list.getBoundingClientRect().top;
}"""


def offset_in_list(page: Page, message_id: int, *, scroll_to_top: bool = False) -> float:
    """Where a message sits in the list (optionally right after scrolling to the top)."""
    return page.evaluate(f"([id, toTop]) => ({OFFSET})(id, toTop)", [message_id, scroll_to_top])


def test_scroll_back_to_the_first_message(page: Page, app_url):
    user = UserFactory(ai_notice_dismissed=True)
    conversation, ids = long_conversation(user)
    log_in(page, app_url, user.username)
    page.goto(f"{app_url}/c/{conversation.pk}/")
    articles = page.locator("#messages > article")
    expect(articles).to_have_count(50)
    expect(page.locator(f"#message-{ids[-1]}")).to_be_in_viewport()

    loaded = 50
    while loaded < MESSAGES:
        oldest = ids[-loaded]
        before = offset_in_list(page, oldest, scroll_to_top=True)
        loaded = min(MESSAGES, loaded + 50)
        expect(articles).to_have_count(loaded)
        # The reader stays where they were: the older page went in above, out of view.
        assert abs(offset_in_list(page, oldest) - before) < 40
        expect(page.locator(f"#message-{oldest}")).to_be_in_viewport()

    page.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
    expect(page.locator(f"#message-{ids[0]}")).to_be_in_viewport()
    expect(page.locator(".older-messages")).to_have_count(0)
    expect(page.locator("#messages")).to_have_attribute("aria-live", "polite")  # restored
    shown = [int(i) for i in articles.evaluate_all("els => els.map(e => e.dataset.id)")]
    assert shown == ids


def test_search_from_the_sidebar_opens_an_old_message(page: Page, app_url):
    user = UserFactory(ai_notice_dismissed=True)
    conversation, ids = long_conversation(
        user, special={7: "Remember the xylophone lesson on Tuesday."}
    )
    ConversationFactory(user=user, title="Unrelated chat")
    other = UserFactory()
    ConversationFactory(user=other, title="Xylophone for sale")  # never shown to user
    log_in(page, app_url, user.username)

    page.get_by_label("Search conversations").fill("xylophone")
    page.get_by_label("Search conversations").press("Enter")

    expect(page).to_have_url(re.compile(r"/search/\?q=xylophone$"))
    hits = page.locator(".hit")
    expect(hits).to_have_count(1)
    expect(hits.locator("mark")).to_have_text("xylophone")
    hits.get_by_role("link", name="A long chat").click()

    target = page.locator(f"#message-{ids[7]}")
    expect(page).to_have_url(re.compile(rf"/c/{conversation.pk}/#message-{ids[7]}$"))
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile("search-target"))
    assert Conversation.objects.count() == 3
