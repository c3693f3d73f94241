"""A user rates a reply down with a comment; staff flag, assign and resolve it from the queue;
the admin sees who looked at it in the audit log."""

import re

from playwright.sync_api import Browser, Page, expect

from fakeanthropic import Scripted
from review.models import AuditLog, Rating, ReviewItem
from tests.factories import PASSWORD, ConversationFactory, UserFactory
from tests.review.conftest import make_reply, make_reviewer


def log_in(page: Page, app_url: str, username: str) -> None:
    page.goto(f"{app_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_thumbs_down_flag_assign_resolve_and_audit(browser: Browser, app_url):
    owner = UserFactory(username="ada")
    reply = make_reply(owner, text="The capital of Australia is **Sydney**.")
    reviewer = make_reviewer(username="rita")
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)

    # The user gives the reply a thumbs down with a comment.
    ada = browser.new_page()
    log_in(ada, app_url, owner.username)
    ada.goto(f"{app_url}/c/{reply.conversation_id}/")
    article = ada.locator(f"#message-{reply.pk}")
    article.get_by_role("button", name="Bad reply").click()
    expect(article.get_by_role("button", name="Bad reply")).to_have_attribute(
        "aria-pressed", "true"
    )
    article.get_by_label("Comment (optional)").fill("It is Canberra, not Sydney.")
    article.get_by_role("button", name="Save comment").click()
    expect(article.get_by_text("Your comment: It is Canberra, not Sydney.")).to_be_visible()
    ada.reload()  # the rating is the user's own state, loaded again with the page
    expect(
        ada.locator(f"#message-{reply.pk}").get_by_role("button", name="Bad reply")
    ).to_have_attribute("aria-pressed", "true")
    ada.close()

    # Staff find it in the queue, flag it, assign it to themselves and resolve it.
    rita = browser.new_page()
    log_in(rita, app_url, reviewer.username)
    rita.get_by_role("link", name="Review").click()
    expect(rita.get_by_role("heading", name="Review queue")).to_be_visible()
    row = rita.locator("tr", has_text=f"Reply #{reply.pk}")
    expect(row).to_contain_text("It is Canberra, not Sydney.")
    row.get_by_role("link", name=f"Reply #{reply.pk}").click()
    expect(rita.locator("#item-state")).to_have_text("Open")
    expect(rita.locator("#system-prompt")).to_have_text("Be concise.")
    expect(rita.locator(".review-sent")).to_contain_text("What is the capital?")

    rita.get_by_label("Category").select_option("inaccurate")
    rita.get_by_label("Flag note").fill("Wrong capital; add to the geography evals.")
    rita.get_by_role("button", name="Flag", exact=True).click()
    expect(rita.locator(".review-labels")).to_contain_text("Staff flag · Inaccurate")

    rita.get_by_role("button", name="Assign to me").click()
    expect(rita.locator("#item-state")).to_have_text("In review")
    expect(rita.locator("#item-assignee")).to_have_text("rita")

    rita.get_by_label("Resolution note").fill("Prompt fixed; example exported.")
    rita.get_by_role("button", name="Resolve").click()
    expect(rita.locator("#item-state")).to_have_text("Resolved")
    expect(rita.locator("#item-note")).to_have_text("Prompt fixed; example exported.")
    rita.close()

    item = ReviewItem.objects.get(message=reply)
    assert (item.state, item.assignee, item.closed_by) == ("resolved", reviewer, reviewer)
    assert item.flags.get().category == "inaccurate"
    assert Rating.objects.get(message=reply).comment == "It is Canberra, not Sydney."

    # The admin sees in the audit log that rita opened ada's reply.
    root = browser.new_page()
    log_in(root, app_url, admin.username)
    root.goto(f"{app_url}/admin/")
    root.get_by_role("link", name="Audit log").click()
    expect(root).to_have_url(re.compile(r"/admin/review/auditlog/$"))
    first = root.locator("#result_list tbody tr").first
    expect(first).to_contain_text("rita")
    expect(first).to_contain_text("Review item")
    expect(first).to_contain_text(str(reply.conversation_id))
    assert AuditLog.objects.filter(actor=reviewer, message_id=reply.pk).count() >= 4
    root.close()


def test_a_live_reply_gets_rating_controls_when_it_finishes(page: Page, app_url, fake_api):
    fake_api.script(Scripted(text="Here is a *fresh* answer."))
    user = UserFactory()
    conversation = ConversationFactory(user=user)
    log_in(page, app_url, user.username)
    page.goto(f"{app_url}/c/{conversation.pk}/")
    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")
    page.get_by_label("Message", exact=True).fill("Tell me something")
    page.get_by_label("Message", exact=True).press("Enter")

    reply = page.locator("article.message.assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    reply.get_by_role("button", name="Good reply").click()
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed", "true")
    assert Rating.objects.get(user=user).value == "up"
