"""Model output is untrusted: markdown renders, markup and scripts do not."""

import re

import pytest
from django.urls import reverse

from conversations.models import Message
from conversations.rendering import render_markdown
from tests.factories import ConversationFactory, MessageFactory
from tests.html_checks import dangerous_markup

HOSTILE = (
    "Hi <script>alert('x')</script>\n\n"
    '<img src=x onerror="alert(1)">\n\n'
    "[click me](javascript:alert(document.cookie))\n\n"
    '<a href="javascript:alert(2)">raw link</a>\n\n'
    "![pixel](https://tracker.example/p.png)"
)


def test_markdown_renders_lists_and_highlighted_code():
    html = render_markdown("- a\n- b\n\n```python\nx = 1\n```")
    assert "<li>a</li>" in html
    assert '<span class="n">x</span>' in html


def test_hostile_reply_renders_inert():
    html = render_markdown(HOSTILE)
    assert dangerous_markup(html) == []  # no script, handler, javascript: link or pixel
    assert "&lt;script&gt;" in html  # shown as text, not dropped silently


@pytest.mark.django_db
def test_hostile_reply_in_the_page_is_inert(client):
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, role=Message.Role.ASSISTANT, content=HOSTILE)
    MessageFactory(conversation=conversation, content="<script>alert('user')</script>")
    client.force_login(conversation.user)
    page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    contents = re.findall(r'<div class="content[^"]*">(.*?)</div>', page, re.S)
    assert len(contents) == 2
    body = "".join(contents)
    assert dangerous_markup(body) == []
    assert "&lt;script&gt;alert(&#x27;user&#x27;)&lt;/script&gt;" in body
