"""Every control on the chat pages has a name a screen reader can announce."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from conversations.models import Message
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

CONTROLS = {"input", "textarea", "select", "button"}


class _Controls(HTMLParser):
    """Collect controls and whether each has a label, aria-label or text."""

    def __init__(self) -> None:
        super().__init__()
        self.label_for: set[str] = set()
        self.open_labels = 0
        self.controls: list[dict] = []
        self.button: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.open_labels += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        if tag in CONTROLS and attrs.get("type") != "hidden":
            control = {"tag": tag, "attrs": attrs, "in_label": self.open_labels > 0, "text": ""}
            self.controls.append(control)
            if tag == "button":
                self.button = control
        if tag == "svg" and self.button is not None:
            self.button["svg"] = True

    def handle_endtag(self, tag):
        if tag == "label":
            self.open_labels -= 1
        if tag == "button":
            self.button = None

    def handle_data(self, data):
        if self.button is not None:
            self.button["text"] += data.strip()


def unnamed_controls(html: str) -> list[str]:
    parser = _Controls()
    parser.feed(html)
    missing = []
    for control in parser.controls:
        attrs = control["attrs"]
        named = (
            attrs.get("aria-label")
            or attrs.get("aria-labelledby")
            or control["in_label"]
            or (attrs.get("id") and attrs["id"] in parser.label_for)
            or control["text"]
        )
        if not named:
            missing.append(f"<{control['tag']} {attrs}>")
    return missing


def test_conversation_page_controls_all_have_names(client, user):
    conversation = ConversationFactory(user=user)
    MessageFactory(conversation=conversation, content="Hello")
    MessageFactory(conversation=conversation, role=Message.Role.ASSISTANT, content="Hi")
    client.force_login(user)
    for url in (
        reverse("conversation_list"),
        reverse("conversation_detail", args=[conversation.pk]),
        reverse("conversation_search") + "?q=hello",
    ):
        page = client.get(url).content.decode()
        assert unnamed_controls(page) == [], url


def test_sidebar_has_a_labelled_search_box_and_a_toggle_for_phones(client, user):
    client.force_login(user)
    page = client.get(reverse("conversation_list")).content.decode()
    assert '<label for="search-q" class="visually-hidden">Search conversations</label>' in page
    assert 'role="search"' in page
    assert 'aria-controls="sidebar" aria-expanded="false">Conversations</button>' in page
