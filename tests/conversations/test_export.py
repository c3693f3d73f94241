"""Export one conversation as Markdown or JSON."""

import json

import pytest
from django.urls import reverse

from conversations.models import Message
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(user):
    conversation = ConversationFactory(
        user=user,
        title="Trip: Lisbon & Porto",
        model="claude-haiku-4-5",
        system_prompt="You are a travel agent.",
    )
    MessageFactory(conversation=conversation, content="Plan **two** days in Lisbon")
    MessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content="Day 1: Alfama.\n\n```\nday2()\n```",
        model="claude-haiku-4-5",
        tokens=42,
        input_tokens=120,
        output_tokens=42,
    )
    MessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content="Half a rep",
        status=Message.Status.STOPPED,
        model="claude-haiku-4-5",
    )
    return conversation


def test_markdown_download_has_title_prompt_and_every_message_in_order(client, user, conversation):
    client.force_login(user)

    response = client.get(reverse("conversation_export_markdown", args=[conversation.pk]))

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="trip-lisbon-porto-{conversation.pk}.md"'
    )
    text = response.content.decode()
    assert text.startswith("# Trip: Lisbon & Porto\n")
    assert "- Model: claude-haiku-4-5" in text
    assert "## System prompt\n\nYou are a travel agent." in text
    assert text.index("Plan **two** days") < text.index("Day 1: Alfama.") < text.index("Half a")
    assert "### Claude (claude-haiku-4-5), AI-generated" in text
    assert "```\nday2()\n```" in text  # content stays raw markdown
    assert "*This reply is stopped.*" in text


def test_json_download_has_settings_and_messages_with_usage(client, user, conversation):
    client.force_login(user)

    response = client.get(reverse("conversation_export_json", args=[conversation.pk]))

    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    data = json.loads(response.content)
    assert data["title"] == "Trip: Lisbon & Porto"
    assert data["model"] == "claude-haiku-4-5"
    assert data["system_prompt"] == "You are a travel agent."
    assert data["created_at"] == conversation.created_at.isoformat()
    assert [m["role"] for m in data["messages"]] == ["user", "assistant", "assistant"]
    reply = data["messages"][1]
    assert reply["content"] == "Day 1: Alfama.\n\n```\nday2()\n```"
    assert reply["status"] == "complete"
    assert reply["model"] == "claude-haiku-4-5"
    assert reply["tokens"] == 42
    assert reply["usage"]["input_tokens"] == 120
    assert reply["created_at"]
    assert data["messages"][0]["usage"] is None
    assert data["messages"][2]["status"] == "stopped"


def test_unicode_survives_the_json_export(client, user):
    conversation = ConversationFactory(user=user, title="Café ☕")
    MessageFactory(conversation=conversation, content="naïve — 日本語")
    client.force_login(user)
    response = client.get(reverse("conversation_export_json", args=[conversation.pk]))
    assert "日本語" in response.content.decode()
    assert json.loads(response.content)["messages"][0]["content"] == "naïve — 日本語"


@pytest.mark.parametrize("name", ["conversation_export_markdown", "conversation_export_json"])
def test_another_users_conversation_is_not_found(client, user, other_user, name):
    theirs = ConversationFactory(user=other_user)
    MessageFactory(conversation=theirs, content="secret")
    client.force_login(user)
    response = client.get(reverse(name, args=[theirs.pk]))
    assert response.status_code == 404
    assert b"secret" not in response.content


def test_export_buttons_are_on_the_conversation_page(client, user, conversation):
    client.force_login(user)
    page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert f'href="/c/{conversation.pk}/export.md" download' in page
    assert f'href="/c/{conversation.pk}/export.json" download' in page
