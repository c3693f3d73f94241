"""Hostile socket frames: each gets a clear error, nothing is saved or lost, and the same
socket keeps working afterwards. Hypothesis throws arbitrary frames at it too."""

import json
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.consumers import MAX_FRAME_CHARS
from conversations.generations import generations
from conversations.models import Message
from fakeanthropic import Scripted
from tests.factories import ConversationFactory, MessageFactory
from tests.sockets import collect_reply, open_socket, send_text

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_RE = re.compile(r'<div id="chat-error" class="chat-error" role="alert">(.*?)</div>', re.S)
BUG = "Something went wrong on our side"
PROBE = json.dumps({"type": "are-you-there"})
PROBE_ANSWER = "That action is not supported."


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


async def send_raw(communicator, raw: str | bytes) -> None:
    """Send any frame, the empty one too (send_to refuses "")."""
    key = "bytes" if isinstance(raw, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", key: raw})


async def error_after(communicator, frame: str | bytes) -> str:
    """Send one frame; return the error the socket answers with."""
    await send_raw(communicator, frame)
    answer = await communicator.receive_from(timeout=5)
    found = ERROR_RE.search(answer)
    assert found, f"expected an error frame, got {answer[:200]!r}"
    return found.group(1).strip()


def frame(**fields) -> str:
    return json.dumps(fields)


HOSTILE = [
    ("empty", frame(text=""), "Type a message first."),
    ("whitespace only", frame(text=" \t\n\u3000 "), "Type a message first."),
    ("only a NUL", frame(text="\x00\x00"), "Type a message first."),
    ("too long", frame(text="x" * 50_001), "That message is too long (50,001 characters"),
    ("oversized frame", "x" * (MAX_FRAME_CHARS + 1), "That message is too large to send."),
    ("binary frame", b"\x00\xff\xfe", "send text, not binary data"),
    ("not JSON", "{not json", "could not be read"),
    ("empty frame", "", "could not be read"),
    ("JSON but not an object", "[1, 2, 3]", "could not be read"),
    ("a bare string", '"hello"', "could not be read"),
    ("NaN", '{"text": NaN}', "could not be read"),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "could not be read"),
    ("lone surrogate", '{"text": "hi \\ud800 there"}', "not valid text"),
    ("surrogate in a key", '{"\\udfff": 1, "text": "hi"}', "not valid text"),
    ("text is a number", frame(text=42), "A message must be text."),
    ("text is a list", frame(text=["a", "b"]), "A message must be text."),
    ("text is an object", frame(text={"a": 1}), "A message must be text."),
    ("text is null", frame(text=None), "A message must be text."),
    ("unknown type", frame(type="delete_everything", text="hi"), "not supported"),
    ("type is a list", frame(type=["send"], text="hi"), "not supported"),
    ("message id is text", frame(type="regenerate", message_id="abc"), "could not be found"),
    ("message id is huge", frame(type="edit", message_id=10**30, text="x"), "could not be found"),
    ("message id is negative", frame(type="continue", message_id=-5), "could not be found"),
    ("message id is a float", frame(type="regenerate", message_id=1.5), "could not be found"),
    ("message id is true", frame(type="regenerate", message_id=True), "could not be found"),
    ("infinite message id", '{"type": "regenerate", "message_id": Infinity}', "could not be read"),
    ("missing message", frame(type="regenerate", message_id=987654321), "no longer exists"),
]


@pytest.mark.parametrize(("case", "raw", "expected"), HOSTILE, ids=[c[0] for c in HOSTILE])
async def test_hostile_frame_gets_a_clear_error_and_the_socket_still_works(
    user, fake_api, case, raw, expected
):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    error = await error_after(communicator, raw)
    assert expected in error
    assert BUG not in error
    assert await conversation.messages.acount() == 0, "nothing saved from a bad frame"
    assert fake_api.requests == [], "Claude was not called"

    fake_api.script(Scripted(text="Still here."))
    await send_text(communicator, "A normal message after the bad one")
    result = await collect_reply(communicator)
    await communicator.disconnect()
    assert "".join(result["deltas"]) == "Still here."


async def test_control_characters_are_kept_as_text_except_nul(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    fake_api.script(Scripted(text="ok"))
    await send_text(communicator, "bell\x07 tab\t esc\x1b nul\x00 rtl\u202e end")
    await collect_reply(communicator)
    await communicator.disconnect()
    saved = await conversation.messages.filter(role="user").aget()
    assert saved.content == "bell\x07 tab\t esc\x1b nul rtl\u202e end"


async def test_unknown_fields_are_ignored_and_the_message_goes_through(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    fake_api.script(Scripted(text="Fine."))
    await communicator.send_to(
        text_data=frame(text="Hello", HEADERS={}, user_id=999, conversation_id=1, role="admin")
    )
    await collect_reply(communicator)
    await communicator.disconnect()
    messages = [m async for m in Message.objects.filter(conversation=conversation).order_by("id")]
    assert [(m.role, m.content) for m in messages] == [("user", "Hello"), ("assistant", "Fine.")]


async def test_a_socket_cannot_act_on_another_users_messages(user, other_user, fake_api):
    mine = await sync_to_async(ConversationFactory)(user=user)
    theirs = await sync_to_async(ConversationFactory)(user=other_user)
    question = await sync_to_async(MessageFactory)(conversation=theirs, content="Their question")
    reply = await sync_to_async(MessageFactory)(
        conversation=theirs, role=Message.Role.ASSISTANT, content="Their answer"
    )
    communicator, _, _ = await open_socket(user, mine.pk)
    for hostile in (
        frame(type="regenerate", message_id=reply.pk),
        frame(type="continue", message_id=reply.pk),
        frame(type="edit", message_id=question.pk, text="Overwritten"),
    ):
        error = await error_after(communicator, hostile)
        assert "no longer exists" in error
    await communicator.disconnect()
    await question.arefresh_from_db()
    await reply.arefresh_from_db()
    assert (question.content, reply.content) == ("Their question", "Their answer")
    assert await theirs.messages.acount() == 2
    assert fake_api.requests == []


# --- Fuzzing -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Frames of every kind but a valid send (a valid send starts a real turn: tested above).
hostile_frames = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["edit", "stop", "regenerate", "continue", "send", "x"])},
        optional={"message_id": json_values, "text": json_values, "extra": json_values},
    )
    .filter(lambda f: not (f["type"] == "send" and isinstance(f.get("text"), str)))
    .map(json.dumps),
    st.binary(max_size=64),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(hostile_frames, min_size=1, max_size=6))
def test_fuzzed_frames_never_break_the_consumer(user, frames):
    conversation = ConversationFactory(user=user)

    async def run() -> None:
        communicator, connected, _ = await open_socket(user, conversation.pk)
        assert connected
        for raw in frames:
            await send_raw(communicator, raw)
            # The probe's answer proves the consumer is alive and has handled `raw`.
            await communicator.send_to(text_data=PROBE)
            while True:
                answer = await communicator.receive_from(timeout=5)
                assert BUG not in answer, (raw, answer)
                if PROBE_ANSWER in answer:
                    break
        await communicator.disconnect()
        await generations.wait_all()
        await sync_to_async(connections.close_all)()

    async_to_sync(run)()
    assert not Message.objects.filter(conversation=conversation).exists()


async def test_a_reply_with_nul_and_control_characters_is_saved_and_shown(user, fake_api):
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, _, _ = await open_socket(user, conversation.pk)
    fake_api.script(Scripted(text="model\x00 output\x07 with \u202e controls"))
    await send_text(communicator, "Say something odd")
    result = await collect_reply(communicator, wait=5)
    await communicator.disconnect()
    reply = await Message.objects.aget(pk=result["reply_id"])
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == "model output\x07 with \u202e controls"
