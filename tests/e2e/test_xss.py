"""The XSS corpus rendered in Chromium wherever text comes from people or the model: none of
it runs, injects markup, navigates or loads anything.

The pages are loaded with the CSP bypassed, so these tests prove the escaping and
sanitising alone; test_csp.py proves the policy separately.
"""

from playwright.sync_api import Browser, expect

from conversations.models import Preset
from fakeanthropic import Scripted
from review.models import Flag, Rating, ReviewItem
from tests.e2e.probes import Watch, assert_inert, inert, logged_in_context
from tests.factories import ConversationFactory, MessageFactory, UserFactory
from tests.review.conftest import make_reply, make_reviewer
from tests.security.xss_corpus import PAYLOADS, labelled

PER_TURN = 3  # payloads per chat turn: 27 turns stay under the per-user request limit


def chunks(payloads: list[str], size: int) -> list[str]:
    """Join payloads with spaces into strings of at most `size` characters."""
    out, current = [], ""
    for payload in payloads:
        if current and len(current) + 1 + len(payload) > size:
            out.append(current)
            current = ""
        current = f"{current} {payload}" if current else payload
    out.append(current)
    return out


def open_page(browser: Browser, app_url: str, user):
    context = logged_in_context(browser, app_url, user, bypass_csp=True)
    page = context.new_page()
    return page, Watch().attach(page)


def test_corpus_is_big_enough():
    assert len(PAYLOADS) >= 50


def test_model_replies_and_user_messages_stay_inert(browser: Browser, app_url, fake_api):
    user = UserFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    conversation = ConversationFactory(user=user, title=chunks(PAYLOADS, 200)[0])
    page, watch = open_page(browser, app_url, user)
    watch.goto(page, f"/c/{conversation.pk}/")
    expect(page.locator("#chat")).to_have_attribute("data-ws-state", "open")

    groups = [PAYLOADS[i : i + PER_TURN] for i in range(0, len(PAYLOADS), PER_TURN)]
    composer = page.get_by_label("Message", exact=True)
    done = page.locator("article.message.assistant[data-status=complete]")
    for turn, group in enumerate(groups, start=1):
        text = "\n\n".join(group)
        fake_api.script(Scripted(text=text, ttft=0, tokens_per_second=5000))
        composer.fill(text)
        composer.press("Enter")
        expect(done).to_have_count(turn)

    assert_inert(page, watch, "after streaming every payload through the socket")
    # Shown as text, not dropped: the user's message keeps its angle brackets.
    expect(page.locator("article.message.user").first).to_contain_text("<script>")

    watch.goto(page, f"/c/{conversation.pk}/")  # the same messages rendered by the server
    assert_inert(page, watch, "after a reload")
    watch.goto(page, "/usage/")  # spend by conversation shows the payload title
    assert_inert(page, watch, "on my usage page")
    page.context.close()

    page, watch = open_page(browser, app_url, admin)
    watch.goto(page, "/admin/billing/dashboard/")
    assert_inert(page, watch, "on the spend dashboard")
    for path in ("/admin/conversations/conversation/", "/admin/conversations/message/"):
        watch.goto(page, path)
        assert_inert(page, watch, path)
    page.context.close()


def test_titles_document_names_preset_names_and_search_stay_inert(browser: Browser, app_url):
    user = UserFactory()
    for index, payload in enumerate(PAYLOADS):
        Preset.objects.create(name=labelled(payload, index, 100))
    conversations = []
    for text in chunks(PAYLOADS, 200):
        conversation = ConversationFactory(
            user=user, title=text, document_name=text, document_text="Reference notes."
        )
        MessageFactory(conversation=conversation, content=f"xssprobe {text}")
        conversations.append(conversation)

    page, watch = open_page(browser, app_url, user)
    watch.goto(page, "/")  # every title in the sidebar
    assert_inert(page, watch, "home page sidebar")
    for conversation in conversations:  # title in <title>, the rename box, document name
        watch.goto(page, f"/c/{conversation.pk}/")
        assert_inert(page, watch, f"conversation {conversation.title!r}")
    expect(page.locator("#id_preset option")).to_have_count(len(PAYLOADS) + 1)
    expect(page.locator("#conversation-title")).to_have_value(conversations[-1].title)

    watch.goto(page, "/search/?q=xssprobe")  # snippets with highlighted matches
    expect(page.locator(".hit")).not_to_have_count(0)
    assert_inert(page, watch, "search results")
    for text in chunks(PAYLOADS, 200)[:4]:  # the query reflected in the page
        page.goto(f"{app_url}/search/")
        watch.navigations.clear()
        page.locator("#search-q").fill(text)
        page.locator("#search-q").press("Enter")
        page.wait_for_url("**/search/?q=*")
        watch.navigations.clear()
        assert_inert(page, watch, f"search for {text!r}")
    page.context.close()


def test_flag_notes_ratings_and_transcripts_stay_inert(browser: Browser, app_url):
    owner = UserFactory()
    reviewer = make_reviewer()
    admin = UserFactory(is_staff=True, is_superuser=True)
    everything = "\n\n".join(PAYLOADS)
    reply = make_reply(owner, text=everything)
    reply.conversation.title = chunks(PAYLOADS, 200)[1]
    reply.conversation.system_prompt = everything
    reply.conversation.save()
    item = ReviewItem.open_for(reply)
    for payload in PAYLOADS:
        Flag.objects.create(
            item=item, source="flag", category="other", note=payload, created_by=reviewer
        )
    Rating.objects.create(message=reply, user=owner, value="down", comment=everything)
    item.resolution_note = everything
    item.save()

    page, watch = open_page(browser, app_url, reviewer)
    for path in (
        "/review/",
        f"/review/items/{item.pk}/",
        f"/review/conversations/{reply.conversation_id}/",
    ):
        watch.goto(page, path)
        assert_inert(page, watch, path)
    expect(page.locator("body")).to_contain_text("<script>")  # as text on the transcript
    page.context.close()

    page, watch = open_page(browser, app_url, owner)  # the owner sees their own comment
    watch.goto(page, f"/c/{reply.conversation_id}/")
    assert_inert(page, watch, "the owner's conversation with their rating")
    page.context.close()

    page, watch = open_page(browser, app_url, admin)
    for path in ("/admin/review/rating/", "/admin/review/reviewitem/", "/admin/"):
        watch.goto(page, path)
        assert_inert(page, watch, path)
    page.context.close()


def test_the_probe_notices_injected_markup(browser: Browser, app_url):
    """The detector itself: markup that did get in is reported (so a pass means something)."""
    context = browser.new_context(base_url=app_url, bypass_csp=True)
    page = context.new_page()
    watch = Watch().attach(page)
    watch.goto(page, "/accounts/login/")
    page.evaluate(
        """() => {
          const box = document.createElement("div");
          box.className = "content markdown";
          box.innerHTML = '<img src="data:," onerror="window.__xss = 1"><iframe></iframe>';
          document.body.appendChild(box);
        }"""
    )
    page.wait_for_function("window.__xss === 1")
    problems = inert(page, watch)
    assert "canary window.__xss=1" in problems
    assert any("handler onerror" in p for p in problems)
    assert any(p.startswith("<iframe> element") for p in problems)
    context.close()
