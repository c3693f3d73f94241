"""Export a conversation from its page: the downloads hold the whole conversation."""

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from conversations.models import Message
from tests.factories import PASSWORD, ConversationFactory, MessageFactory, UserFactory


def test_export_markdown_and_json(page: Page, app_url):
    user = UserFactory(ai_notice_dismissed=True)
    conversation = ConversationFactory(user=user, title="Packing list", system_prompt="Be brief.")
    MessageFactory(conversation=conversation, content="What should I pack for Oslo?")
    MessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content="- a **warm** coat\n- boots",
        model="claude-sonnet-4-6",
    )
    page.goto(f"{app_url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{app_url}/c/{conversation.pk}/")

    page.locator(".export summary").click()
    with page.expect_download() as markdown_download:
        page.get_by_role("link", name="Markdown (.md)").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename == f"packing-list-{conversation.pk}.md"
    text = Path(markdown.path()).read_text(encoding="utf-8")
    assert text.startswith("# Packing list\n")
    assert "Be brief." in text
    assert text.index("What should I pack for Oslo?") < text.index("- a **warm** coat")

    with page.expect_download() as json_download:
        page.get_by_role("link", name="JSON (.json)").click()
    data = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    assert data["title"] == "Packing list"
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["messages"][1]["model"] == "claude-sonnet-4-6"
    expect(page.locator("#chat")).to_be_visible()  # the page stayed put
