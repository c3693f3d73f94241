"""Presets, the model picker, reference documents, edit and resend, copy, auto titles."""

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import reverse

from conversations.generations import generations
from conversations.models import ChatModel, Conversation, Message, Preset
from fakeanthropic import Scripted, count_tokens
from tests.factories import ConversationFactory, MessageFactory
from tests.sockets import collect_reply, open_socket, plain, send_text

DOCUMENT = "# Handbook\n\n" + "Employees may work remotely on Fridays. " * 120


@pytest.mark.django_db
class TestSettings:
    def test_picker_offers_only_enabled_models_with_prices(self, client, user):
        ChatModel.objects.filter(model_id="claude-opus-4-8").update(enabled=False)
        ChatModel.objects.create(model_id="claude-fable-5-2", label="Fable 5.2")
        conversation = ConversationFactory(user=user)
        client.force_login(user)
        page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
        assert '<option value="claude-haiku-4-5">' in page
        assert "claude-opus-4-8" not in page.split('id="settings-panel"')[1].split("</form>")[0]
        assert "$3.00" in page  # Sonnet 4.6's input price from the price table
        assert "unpriced" in page  # Fable has no price yet: shown as such, never guessed

    def test_a_disabled_model_cannot_be_chosen(self, client, user):
        ChatModel.objects.filter(model_id="claude-opus-4-8").update(enabled=False)
        conversation = ConversationFactory(user=user)
        client.force_login(user)
        response = client.post(
            reverse("conversation_settings", args=[conversation.pk]),
            {"model": "claude-opus-4-8"},
        )
        conversation.refresh_from_db()
        assert response.status_code == 400
        assert conversation.model == ""

    def test_picking_a_preset_fills_system_prompt_model_and_length(self, client, user):
        preset = Preset.objects.create(
            name="Lawyer", system_prompt="Answer like a careful lawyer.",
            model="claude-haiku-4-5", max_tokens=300,
        )  # fmt: skip
        conversation = ConversationFactory(user=user)
        client.force_login(user)
        client.post(reverse("conversation_settings", args=[conversation.pk]), {"preset": preset.pk})
        conversation.refresh_from_db()
        assert conversation.system_prompt == "Answer like a careful lawyer."
        assert conversation.effective_model == "claude-haiku-4-5"
        assert conversation.effective_max_tokens == 300

    def test_own_system_prompt(self, client, user):
        conversation = ConversationFactory(user=user)
        client.force_login(user)
        client.post(
            reverse("conversation_settings", args=[conversation.pk]),
            {"system_prompt": "Reply in French."},
        )
        conversation.refresh_from_db()
        assert conversation.system_prompt == "Reply in French."

    @pytest.mark.parametrize(
        ("name", "content", "error"),
        [
            ("photo.png", b"\x89PNG....", "Attach a text or markdown file"),
            ("notes.md", b"\xff\xfe\x00bad", "not UTF-8 text"),
            ("notes.md", b"", "empty"),
            ("big.txt", b"a" * 300_001, "the limit is"),
        ],
    )
    def test_bad_documents_get_a_clear_error(self, client, user, settings, name, content, error):
        settings.DOCUMENT_MAX_BYTES = 300_000
        conversation = ConversationFactory(user=user)
        client.force_login(user)
        response = client.post(
            reverse("conversation_document", args=[conversation.pk]),
            {"document": SimpleUploadedFile(name, content)},
        )
        conversation.refresh_from_db()
        assert response.status_code == 400
        assert error in response.content.decode()
        assert conversation.document_text == ""

    def test_document_attach_and_remove(self, client, user):
        conversation = ConversationFactory(user=user)
        client.force_login(user)
        client.post(
            reverse("conversation_document", args=[conversation.pk]),
            {"document": SimpleUploadedFile("handbook.md", DOCUMENT.encode())},
        )
        conversation.refresh_from_db()
        assert conversation.document_name == "handbook.md"
        assert conversation.document_text == DOCUMENT
        client.post(reverse("conversation_document", args=[conversation.pk]), {"remove": "1"})
        conversation.refresh_from_db()
        assert conversation.document_text == ""

    def test_copy_returns_raw_markdown_only_to_the_owner(self, client, user, other_user):
        message = MessageFactory(
            conversation=ConversationFactory(user=user), role="assistant", content="**raw** md"
        )
        url = reverse("message_raw", args=[message.conversation_id, message.pk])
        client.force_login(other_user)
        assert client.get(url).status_code == 404
        client.force_login(user)
        response = client.get(url)
        assert response.content.decode() == "**raw** md"
        assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db(transaction=True)
class TestThroughTheSocket:
    @pytest.fixture(autouse=True)
    async def close_db_connections(self):
        yield
        await generations.wait_all()
        await sync_to_async(connections.close_all)()

    async def test_document_is_a_cached_system_block_read_on_later_turns(self, user, fake_api):
        conversation = await sync_to_async(ConversationFactory)(
            user=user, document_name="handbook.md", document_text=DOCUMENT
        )
        communicator, _, _ = await open_socket(user, conversation.pk)
        replies = []
        for question in ("Can I work remotely?", "On which day?", "Since when?"):
            fake_api.script(Scripted(text="On Fridays."))
            await send_text(communicator, question)
            result = await collect_reply(communicator)
            replies.append(await Message.objects.aget(pk=result["reply_id"]))
        await communicator.disconnect()

        system = fake_api.requests[0]["body"]["system"]
        assert system[-1]["cache_control"] == {"type": "ephemeral"}
        assert "Employees may work remotely" in system[-1]["text"]
        assert replies[0].cache_creation_input_tokens >= count_tokens(DOCUMENT)
        assert replies[1].cache_read_input_tokens >= count_tokens(DOCUMENT)
        assert replies[2].cache_read_input_tokens > replies[1].cache_read_input_tokens

    async def test_edit_and_resend_the_last_message(self, user, fake_api):
        conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
        fake_api.script(Scripted(text="About cats."), Scripted(text="About dogs."))
        communicator, _, _ = await open_socket(user, conversation.pk)
        await send_text(communicator, "Tell me about cats")
        await collect_reply(communicator)
        question = await Message.objects.aget(conversation=conversation, role="user")
        await communicator.send_json_to(
            {"type": "edit", "message_id": question.pk, "text": "Tell me about dogs"}
        )
        result = await collect_reply(communicator)
        await communicator.disconnect()

        await question.arefresh_from_db()
        assert question.content == "Tell me about dogs"
        assert question.edited
        replies = [m async for m in conversation.messages.filter(role="assistant").order_by("id")]
        assert [r.content for r in replies] == ["About cats.", "About dogs."]  # old one kept
        assert result["reply_id"] == replies[-1].pk
        assert plain(fake_api.requests[-1]["body"]["messages"]) == [
            {"role": "user", "content": "Tell me about dogs"}
        ]

    async def test_only_the_latest_user_message_can_be_edited(self, user, fake_api):
        conversation = await sync_to_async(ConversationFactory)(user=user, title="Named")
        first = await sync_to_async(MessageFactory)(conversation=conversation, content="one")
        await sync_to_async(MessageFactory)(conversation=conversation, content="two")
        communicator, _, _ = await open_socket(user, conversation.pk)
        await communicator.send_json_to({"type": "edit", "message_id": first.pk, "text": "x"})
        frame = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        assert "Only your latest message can be edited" in frame
        assert fake_api.requests == []

    async def test_first_reply_gets_an_auto_title_from_the_cheap_model(self, user, fake_api):
        conversation = await sync_to_async(ConversationFactory)(
            user=user, title=Conversation.DEFAULT_TITLE
        )
        fake_api.script(Scripted(text="Use the csv module."))
        communicator, _, _ = await open_socket(user, conversation.pk)
        await send_text(communicator, "How do I read a CSV file in Python?")
        await collect_reply(communicator)
        titled = await communicator.receive_from(timeout=5)
        await communicator.disconnect()

        await conversation.arefresh_from_db()
        assert conversation.title == "How do read csv file in"
        assert f'id="conversation-{conversation.pk}"' in titled
        title_request = fake_api.requests[-1]["body"]
        assert title_request["model"] == "claude-haiku-4-5"
        assert title_request["output_config"]["format"]["type"] == "json_schema"

    async def test_a_renamed_conversation_keeps_its_name(self, user, fake_api):
        conversation = await sync_to_async(ConversationFactory)(user=user, title="Mine")
        communicator, _, _ = await open_socket(user, conversation.pk)
        await send_text(communicator, "Hello")
        await collect_reply(communicator)
        await communicator.disconnect()
        await conversation.arefresh_from_db()
        assert conversation.title == "Mine"
        assert len(fake_api.requests) == 1  # no title call
