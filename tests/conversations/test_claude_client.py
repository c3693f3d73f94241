"""The SDK client: its HTTP transport, and a reply streamed through each."""

import html

import anthropic
import httpx2
import pytest
from asgiref.sync import sync_to_async

from conversations.claude.client import get_client, reset_clients
from tests.factories import ConversationFactory
from tests.sockets import collect_reply, open_socket, send_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_reply_streams_through_either_transport(transport, settings, user, fake_api):
    settings.CLAUDE_HTTP_CLIENT = transport
    reset_clients()
    client = get_client()
    aiohttp_client = isinstance(client._client, anthropic.DefaultAioHttpClient)
    assert aiohttp_client == (transport == "aiohttp")
    assert isinstance(client._client, httpx2.AsyncClient)

    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, "[[fake:tokens=40]] Stream me")
    result = await collect_reply(communicator)
    await communicator.disconnect()
    assert 'data-status="complete"' in result["final"]
    streamed = "".join(result["deltas"])
    assert len(streamed.split()) > 20  # the reply's text came in delta frames
    assert streamed.strip() in html.unescape(result["final"])
    assert len(fake_api.requests) == 1


def test_the_default_transport_is_aiohttp():
    from django.conf import settings

    assert settings.CLAUDE_HTTP_CLIENT == "aiohttp"


async def test_claude_gets_the_messages_create_body_with_the_sdk_headers(user, fake_api):
    """The reply's request is sent with the SDK's `post` and a body encoded once by us: the
    API sees what `messages.create(stream=True)` would send, with the SDK's own headers."""
    reset_clients()
    conversation = await sync_to_async(ConversationFactory)(
        user=user, system_prompt="Answer in French.", max_tokens=321
    )
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, "[[fake:tokens=5]] Un café ☕, s'il vous plaît")
    await collect_reply(communicator)
    await communicator.disconnect()

    [sent] = fake_api.requests
    body, headers = sent["body"], sent["headers"]
    assert body["model"] == conversation.effective_model
    assert body["max_tokens"] == 321
    assert body["stream"] is True
    assert body["system"][0]["text"].endswith("Answer in French.")
    [question] = body["messages"]
    assert question["role"] == "user"
    assert question["content"][-1]["text"] == "[[fake:tokens=5]] Un café ☕, s'il vous plaît"
    assert question["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert headers["content-type"] == "application/json"
    sdk = get_client().default_headers
    assert headers["anthropic-version"] == sdk["anthropic-version"]
    assert headers["x-stainless-lang"] == sdk["X-Stainless-Lang"] == "python"
