"""Pick a preset and a model, attach a document and ask about it, edit and resend."""

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Preset
from fakeanthropic import Scripted
from tests.e2e.test_stop_regenerate import log_in
from tests.factories import ConversationFactory, UserFactory


def test_preset_model_document_then_edit_and_resend(page: Page, app_url, fake_api, tmp_path):
    Preset.objects.create(
        name="Support agent", system_prompt="You answer HR questions briefly.", max_tokens=400
    )
    user = UserFactory()
    conversation = ConversationFactory(user=user, title="HR questions")
    log_in(page, app_url, user.username)
    page.goto(f"{app_url}/c/{conversation.pk}/")

    page.get_by_text("Model, system prompt and document").click()
    page.get_by_label("Preset:").select_option(label="Support agent")
    page.get_by_label("Model:").select_option("claude-haiku-4-5")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Model, system prompt and document").click()
    expect(page.get_by_label("System prompt:")).to_have_value("You answer HR questions briefly.")
    expect(page.get_by_label("Model:")).to_have_value("claude-haiku-4-5")

    handbook = tmp_path / "handbook.md"
    handbook.write_text("# Handbook\n\nRemote work is allowed on Fridays.\n")
    page.get_by_label("Reference document (.txt or .md):").set_input_files(handbook)
    page.get_by_role("button", name="Attach").click()
    expect(page.get_by_text("handbook.md").first).to_be_visible()

    fake_api.script(Scripted(text="Remote work is allowed on **Fridays**."))
    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")
    page.get_by_label("Message", exact=True).fill("When can I work remotely?")
    page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator("article.message.assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply).to_contain_text("claude-haiku-4-5")  # the reply says which model wrote it
    sent = fake_api.requests[-1]["body"]
    assert sent["model"] == "claude-haiku-4-5"
    assert sent["max_tokens"] == 400
    assert "Remote work is allowed on Fridays" in sent["system"][-1]["text"]

    fake_api.script(Scripted(text="Parking is free."))
    question = page.locator("article.message.user").last
    question.get_by_text("Edit").click()
    question.get_by_label("Edit your message").fill("Is parking free?")
    question.get_by_role("button", name="Resend").click()
    expect(page.locator("article.message.assistant")).to_have_count(2)
    expect(page.locator("article.message.assistant").last).to_contain_text("Parking is free.")
    expect(page.locator("article.message.user").last).to_contain_text("Is parking free?")
    expect(page.locator("article.message.user").last).to_contain_text("(edited)")

    fake_api.script(Scripted(text="Yes, parking is free for staff."))
    page.locator("article.message.assistant").last.get_by_role("button", name="Regenerate").click()
    expect(page.locator("#chat-error")).to_have_text("")
    expect(page.locator("article.message.assistant")).to_have_count(3)
    expect(page.locator("article.message.assistant").last).to_contain_text("free for staff")
    assert Conversation.objects.get(pk=conversation.pk).title == "HR questions"
