"""The chat socket, driven like a browser, with the real SDK streaming from the fake API."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.generations import generations
from conversations.models import Message
from fakeanthropic import Scripted
from tests.factories import ConversationFactory
from tests.sockets import collect_reply, open_socket, plain, send_text

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = (
    "Here is a list:\n\n- first item\n- second item\n\n"
    "```python\nprint('hello')\n```\n\nThat is all & done <ok>."
)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


async def test_deltas_arrive_in_order_and_saved_reply_is_their_concatenation(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text=REPLY))
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected

    await send_text(communicator, "Show me a list")
    result = await collect_reply(communicator)
    await communicator.disconnect()

    assert len(result["deltas"]) >= 2, "the reply should arrive in several frames"
    assert "".join(result["deltas"]) == REPLY
    reply = await Message.objects.aget(pk=result["reply_id"])
    assert reply.content == REPLY
    assert reply.status == Message.Status.COMPLETE
    assert "<li>first item</li>" in result["final"]
    assert 'class="language-python"' in result["final"]


async def test_usage_of_the_reply_is_stored(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text="Short answer.", output_tokens=7))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Hello")
    result = await collect_reply(communicator)
    await communicator.disconnect()

    reply = await Message.objects.aget(pk=result["reply_id"])
    sent = fake_api.requests[-1]
    assert reply.output_tokens == 7
    assert reply.input_tokens and reply.input_tokens > 0
    assert reply.cache_read_input_tokens == 0
    assert reply.request_id.startswith("req_")
    assert reply.model == "claude-sonnet-4-6"
    assert plain(sent["body"]["messages"]) == [{"role": "user", "content": "Hello"}]


async def test_user_message_is_saved_even_when_claude_fails(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(*[Scripted(status=400, error_message="bad")])
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "Will this fail?")
    result = await collect_reply(communicator)
    await communicator.disconnect()

    messages = [m async for m in conversation.messages.order_by("id")]
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == "Will this fail?"
    assert messages[1].status == Message.Status.FAILED
    assert messages[1].error_kind == "bad_request"
    assert "could not accept this request" in result["final"]


async def test_history_is_sent_as_whole_turns(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text="One."), Scripted(text="Two."))
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "First")
    await collect_reply(communicator)
    await send_text(communicator, "Second")
    await collect_reply(communicator)
    await communicator.disconnect()

    assert plain(fake_api.requests[-1]["body"]["messages"]) == [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "One."},
        {"role": "user", "content": "Second"},
    ]


async def test_empty_message_gets_a_clear_error_and_nothing_is_called(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await send_text(communicator, "   ")
    frame = await communicator.receive_from(timeout=5)
    await communicator.disconnect()

    assert "Type a message first." in frame
    assert fake_api.requests == []
    assert await conversation.messages.acount() == 0


async def test_malformed_frame_gets_an_error_not_a_crash(user):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    await communicator.send_to(text_data="{not json")
    frame = await communicator.receive_from(timeout=5)
    assert "could not be read" in frame
    await send_text(communicator, "still works")
    result = await collect_reply(communicator)
    await communicator.disconnect()
    assert result["deltas"]


async def test_anonymous_socket_is_refused(user):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    _communicator, connected, code = await open_socket(None, conversation.pk)
    assert not connected
    assert code == 4401


async def test_socket_from_a_foreign_origin_is_refused(user):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    _communicator, connected, _ = await open_socket(
        user, conversation.pk, origin="http://evil.example"
    )
    assert not connected


async def test_another_user_cannot_stream_into_my_conversation(user, other_user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    _communicator, connected, code = await open_socket(other_user, conversation.pk)
    assert not connected
    assert code == 4404
    assert fake_api.requests == []


async def test_reply_arrives_live_in_a_second_tab(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    fake_api.script(Scripted(text=REPLY))
    first, _, _ = await open_socket(user, conversation.pk)
    second, _, _ = await open_socket(user, conversation.pk)
    await send_text(first, "Hello")
    mine = await collect_reply(first)
    theirs = await collect_reply(second)
    await first.disconnect()
    await second.disconnect()
    assert "".join(theirs["deltas"]) == "".join(mine["deltas"]) == REPLY
