"""A person signs up, chats, watches the reply stream in, reloads and sees the history."""

import re

from playwright.sync_api import Page, expect

from fakeanthropic import Scripted

REPLY = (
    "Sure! Here is what I found:\n\n- **one** thing\n- another thing\n\n"
    "```python\nprint('streamed')\n```\n\nHope that helps."
)

RECORD_GROWTH = """
() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const el = document.querySelector('.content.streaming');
    if (el) window.__lengths.push(el.textContent.length);
  }).observe(document.getElementById('messages'),
             {subtree: true, childList: true, characterData: true});
}
"""


def test_sign_up_chat_stream_and_reload(page: Page, app_url, fake_api):
    fake_api.script(Scripted(text=REPLY, tokens_per_second=40))
    page.goto(f"{app_url}/accounts/signup/")
    page.get_by_label("Username").fill("ada")
    page.locator("#id_password1").fill("a-long-and-unusual-passphrase")
    page.locator("#id_password2").fill("a-long-and-unusual-passphrase")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Start a new conversation")).to_be_visible()

    page.get_by_role("button", name="Start a conversation").click()
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")
    page.evaluate(RECORD_GROWTH)

    box = page.get_by_label("Message", exact=True)
    box.fill("What did you find?")
    box.press("Enter")

    reply = page.locator("article.message.assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply.locator("li").first).to_have_text("one thing")
    expect(reply.locator("pre")).to_contain_text("print('streamed')")
    lengths = [n for n in page.evaluate("window.__lengths") if n > 0]
    assert len(set(lengths)) >= 2, f"the reply grew in steps, saw {lengths}"
    expect(box).to_have_value("")

    page.reload()
    expect(page.locator("article.message.user")).to_have_text(re.compile("What did you find?"))
    expect(page.locator("article.message.assistant li").first).to_have_text("one thing")
    expect(page.get_by_text("AI-generated").first).to_be_visible()
