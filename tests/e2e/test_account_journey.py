"""A person downloads all their data from their profile, then deletes their account."""

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from accounts.models import User
from billing.models import LedgerEntry
from conversations.models import Conversation
from tests.billing.conftest import spend
from tests.e2e.test_stop_regenerate import log_in
from tests.factories import PASSWORD, ConversationFactory, MessageFactory, UserFactory


def test_download_my_data_then_delete_my_account(page: Page, app_url):
    person = UserFactory(username="grace")
    conversation = ConversationFactory(user=person, title="Compiler notes")
    MessageFactory(conversation=conversation, content="What is a linker?")
    spend(person, "0.45", conversation=conversation)
    log_in(page, app_url, person.username)

    page.get_by_role("link", name="grace").click()
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data (.json)").click()
    data = json.loads(Path(download.value.path()).read_text())
    assert data["profile"]["username"] == "grace"
    assert data["conversations"][0]["messages"][0]["content"] == "What is a linker?"
    assert len(data["usage"]) == 1

    page.get_by_label("Your password").fill("not my password")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("That is not your password.")).to_be_visible()
    assert User.objects.filter(username="grace").exists()

    page.get_by_label("Your password").fill(PASSWORD)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account was deleted")).to_be_visible()
    assert not User.objects.filter(username="grace").exists()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert LedgerEntry.objects.filter(user__isnull=True).count() == 1

    page.goto(f"{app_url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
