"""Starting a turn in few round trips keeps its guarantees (real Postgres, real threads).

The lock and the context read go to Postgres together (chatsite.db.run_together); the read
must still run after the lock is held, or two sends at once would both start a reply.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing.models import Reservation, UserMonth
from conversations.models import Conversation, Message
from conversations.turns import TurnRejected, _create_turn
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

SENDS = 8


def test_sends_at_the_same_instant_start_one_reply():
    conversation = ConversationFactory()
    start = threading.Barrier(SENDS)

    def send(i: int) -> str:
        try:
            start.wait()
            _create_turn(conversation.pk, f"message {i}")
            return "started"
        except TurnRejected as exc:
            return str(exc)
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=SENDS) as pool:
        outcomes = list(pool.map(send, range(SENDS)))

    assert outcomes.count("started") == 1
    assert all("Wait for the reply to finish" in o for o in outcomes if o != "started")
    assert conversation.messages.filter(role="user").count() == 1
    assert conversation.messages.filter(status=Message.Status.STREAMING).count() == 1
    assert Reservation.objects.count() == 1  # the refused sends held nothing


def test_the_first_message_starts_the_context_of_its_reply():
    conversation = ConversationFactory()

    _, plan, user_message, reply = _create_turn(conversation.pk, "Hello")

    conversation.refresh_from_db()
    assert plan.start_id == plan.newest_user_id == user_message.pk
    assert reply.context_start_id == conversation.context_start_id == user_message.pk
    assert list(conversation.messages.values_list("id", "role")) == [
        (user_message.pk, "user"),
        (reply.pk, "assistant"),
    ]
    assert plan.reservation.pk == Reservation.objects.get().pk
    assert UserMonth.objects.get(user=conversation.user).reserved == plan.reservation.amount


def test_a_later_message_keeps_the_context_start():
    conversation = ConversationFactory()
    first = MessageFactory(conversation=conversation, role="user", content="Earlier")
    MessageFactory(conversation=conversation, role="assistant", content="Answer")

    _, plan, user_message, reply = _create_turn(conversation.pk, "Again")

    assert plan.start_id == reply.context_start_id == first.pk
    assert plan.newest_user_id == user_message.pk
    assert plan.messages[-1]["content"][0]["text"] == "Again"


def test_a_missing_conversation_is_an_error_and_saves_nothing():
    with pytest.raises(Conversation.DoesNotExist):
        _create_turn(987654, "Hello")
    assert not Message.objects.exists()
