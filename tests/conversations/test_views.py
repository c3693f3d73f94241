"""Conversation pages: sidebar, new, rename, delete, and who may see what."""

import pytest
from django.urls import reverse

from conversations.models import Conversation, Message
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_home_lists_only_my_conversations_newest_first(client, user, other_user):
    older = ConversationFactory(user=user, title="Older one")
    newer = ConversationFactory(user=user, title="Newer one")
    ConversationFactory(user=other_user, title="Someone else's")
    Conversation.objects.filter(pk=newer.pk).update(updated_at=older.updated_at.replace(year=2030))
    client.force_login(user)

    page = client.get(reverse("conversation_list")).content.decode()

    assert page.index("Newer one") < page.index("Older one")
    assert "Someone else" not in page


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("conversation_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_new_conversation_opens_it(client, user):
    client.force_login(user)
    response = client.post(reverse("conversation_new"))
    conversation = Conversation.objects.get(user=user)
    assert response["Location"] == reverse("conversation_detail", args=[conversation.pk])


def test_detail_shows_history_with_markdown(client, user):
    conversation = ConversationFactory(user=user)
    MessageFactory(conversation=conversation, content="What is 2+2?")
    MessageFactory(
        conversation=conversation, role=Message.Role.ASSISTANT, content="**Four**, of course."
    )
    client.force_login(user)
    page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert "What is 2+2?" in page
    assert "<strong>Four</strong>, of course." in page
    assert "AI-generated" in page


def test_rename_changes_the_title(client, user):
    conversation = ConversationFactory(user=user)
    client.force_login(user)
    client.post(reverse("conversation_rename", args=[conversation.pk]), {"title": "  Trip plans "})
    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"


def test_rename_to_blank_is_refused(client, user):
    conversation = ConversationFactory(user=user, title="Keep me")
    client.force_login(user)
    response = client.post(reverse("conversation_rename", args=[conversation.pk]), {"title": " "})
    conversation.refresh_from_db()
    assert response.status_code == 400
    assert conversation.title == "Keep me"


def test_delete_removes_conversation_and_messages(client, user):
    conversation = ConversationFactory(user=user)
    MessageFactory(conversation=conversation)
    client.force_login(user)
    client.post(reverse("conversation_delete", args=[conversation.pk]))
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("conversation_detail", "get"),
        ("conversation_rename", "post"),
        ("conversation_delete", "post"),
    ],
)
def test_another_user_gets_404_and_changes_nothing(client, user, other_user, name, method):
    conversation = ConversationFactory(user=user, title="Private")
    client.force_login(other_user)
    response = getattr(client, method)(reverse(name, args=[conversation.pk]), {"title": "Hacked"})
    conversation.refresh_from_db()
    assert response.status_code == 404
    assert conversation.title == "Private"


def test_sidebar_paginates(client, user):
    ConversationFactory.create_batch(35, user=user)
    client.force_login(user)
    page = client.get(reverse("conversation_list")).content.decode()
    assert page.count('<li id="conversation-') == 30
    more = client.get(reverse("conversation_list") + "?page=2", headers={"HX-Request": "true"})
    assert more.content.decode().count('<li id="conversation-') == 5
