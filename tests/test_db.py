"""chatsite.db: statements sent together keep the meaning they have one by one."""

import pytest
from django.db import DatabaseError, transaction

from chatsite.db import insert_statement, new_ids, run_together, saved
from conversations.models import Conversation, Message
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def test_statements_run_in_order_and_each_gives_its_rows():
    conversation = ConversationFactory()
    message = Message(conversation=conversation, role="user", content="Hi")

    inserted, updated, counted = run_together(
        [
            insert_statement(message),
            ("UPDATE conversations_message SET content = %s WHERE conversation_id = %s",
             ["Hello", conversation.pk]),
            ("SELECT content FROM conversations_message WHERE conversation_id = %s",
             [conversation.pk]),
        ]
    )  # fmt: skip

    saved(message, inserted)
    assert updated == []
    assert counted == [("Hello",)]  # the SELECT ran after the UPDATE
    assert Message.objects.get(pk=message.pk).content == "Hello"
    assert not message._state.adding


def test_a_failing_statement_fails_the_batch_and_its_transaction():
    conversation = ConversationFactory(title="Before")

    with pytest.raises(DatabaseError), transaction.atomic():
        run_together(
            [
                ("UPDATE conversations_conversation SET title = %s WHERE id = %s",
                 ["After", conversation.pk]),
                ("SELECT 1 / 0", []),
            ]
        )  # fmt: skip

    assert Conversation.objects.get(pk=conversation.pk).title == "Before"


def test_the_compiled_insert_is_the_one_save_would_run():
    conversation = ConversationFactory()
    first = Message(conversation=conversation, role="user", content="One", tokens=3)
    second = Message(conversation=conversation, role="assistant", content="Two", status="stopped")

    for message in (first, second):  # the second reuses the SQL compiled for the first
        [rows] = run_together([insert_statement(message)])
        saved(message, rows)

    assert list(
        Message.objects.order_by("id").values_list("role", "content", "tokens", "status")
    ) == [("user", "One", 3, "complete"), ("assistant", "Two", None, "stopped")]


def test_ids_taken_ahead_let_rows_that_refer_to_each_other_go_in_one_batch():
    conversation = ConversationFactory()
    [taken] = run_together([new_ids(Message, 2)])
    question_id, reply_id = (row[0] for row in taken)
    question = Message(pk=question_id, conversation=conversation, role="user", content="Q")
    reply = Message(
        pk=reply_id,
        conversation=conversation,
        role="assistant",
        content="A",
        context_start_id=question_id,  # refers to a row of the same batch
    )

    asked, answered = run_together([insert_statement(question), insert_statement(reply)])

    assert question_id < reply_id
    assert saved(question, asked).pk == question_id and saved(reply, answered).pk == reply_id
    assert Message.objects.get(pk=reply_id).context_start_id == question_id
    # The sequence moved past them: the next row saved the usual way gets a new id.
    later = Message.objects.create(conversation=conversation, role="user", content="Next")
    assert later.pk > reply_id
