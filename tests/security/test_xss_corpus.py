"""The XSS corpus through the server-side renderers (fast; tests/e2e/test_xss.py renders it in
Chromium): markdown of model output, search snippets, and escaped text fields."""

from html.parser import HTMLParser

import pytest
from django.template.loader import render_to_string

from conversations.models import Message
from conversations.rendering import render_markdown
from conversations.search import search_conversations
from tests.factories import ConversationFactory, MessageFactory
from tests.html_checks import dangerous_markup
from tests.security.xss_corpus import PAYLOADS

ALLOWED_ATTRIBUTES = {"href", "title", "class", "start", "align", "rel"}


def attributes(html: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every element in html."""
    found = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend((tag, name, value or "") for name, value in attrs)

    Collector().feed(html)
    return found


def test_the_corpus_has_at_least_fifty_payloads():
    assert len(PAYLOADS) >= 50
    assert len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_of_each_payload_is_inert(payload):
    html = render_markdown(payload)
    assert dangerous_markup(html) == []
    # Only the sanitiser's own attributes survive: no handlers, htmx, styles or sources.
    assert {name for _, name, _ in attributes(html)} <= ALLOWED_ATTRIBUTES


def test_markdown_of_all_payloads_together_is_inert():
    html = render_markdown("\n\n".join(PAYLOADS))
    assert dangerous_markup(html) == []


@pytest.mark.django_db
def test_messages_render_payloads_as_text(user):
    conversation = ConversationFactory(user=user)
    for payload in PAYLOADS:
        mine = MessageFactory(conversation=conversation, content=payload)
        html = render_to_string("conversations/detail.html#message", {"message": mine})
        body = html.split('class="content plain">', 1)[1].split("</div>", 1)[0]
        assert dangerous_markup(body) == []
        assert "<" not in body  # every angle bracket escaped


@pytest.mark.django_db
def test_search_snippets_of_payloads_are_inert(user):
    conversation = ConversationFactory(user=user, title="xssprobe")
    for payload in PAYLOADS:
        MessageFactory(
            conversation=conversation, role=Message.Role.USER, content=f"xssprobe {payload}"
        )
    for hit in search_conversations(user, "xssprobe"):
        assert dangerous_markup(str(hit.snippet)) == []
        assert "<" not in str(hit.snippet).replace("<mark>", "").replace("</mark>", "")
