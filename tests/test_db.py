"""chatsite.db: statements sent together keep the meaning they have one by one."""

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from chatsite.db import (
    SEPARATOR,
    QueryLog,
    insert_statement,
    new_ids,
    run_together,
    saved,
    update_statement,
)
from conversations.models import Conversation, Message
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def test_statements_run_in_order_and_each_gives_its_rows():
    conversation = ConversationFactory()
    message = Message(conversation=conversation, role="user", content="Hi")

    inserted, updated, nothing, counted = run_together(
        [
            insert_statement(message),
            ("UPDATE conversations_message SET content = %s WHERE conversation_id = %s",
             ["Hello", conversation.pk]),
            ("SELECT id FROM conversations_message WHERE conversation_id = %s",
             [conversation.pk + 1]),
            ("SELECT content FROM conversations_message WHERE conversation_id = %s",
             [conversation.pk]),
        ]
    )  # fmt: skip

    saved(message, inserted)
    assert updated == []  # no rows to give
    assert nothing == []  # rows to give, none found
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


def test_the_compiled_update_saves_the_fields_named_and_says_whether_the_row_was_there():
    conversation = ConversationFactory()
    first = Message.objects.create(conversation=conversation, role="assistant", status="streaming")
    second = Message.objects.create(conversation=conversation, role="assistant", status="streaming")
    for message, text in ((first, "One"), (second, "Two")):  # the second reuses the SQL
        message.content, message.status, message.tokens = text, "complete", 7
        [rows] = run_together([update_statement(message, ["content", "status"])])
        assert rows == [(message.pk,)]

    assert list(Message.objects.order_by("id").values_list("content", "status", "tokens")) == [
        ("One", "complete", None),  # tokens was not named: not saved, as save(update_fields=)
        ("Two", "complete", None),
    ]
    Message.objects.filter(pk=first.pk).delete()
    first.content = "Gone"
    assert run_together([update_statement(first, ["content", "status"])]) == [[]]


def test_an_empty_batch_sends_nothing():
    assert run_together([]) == []


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


@pytest.mark.django_db(transaction=True)
async def test_orm_calls_run_on_a_pool_of_threads_each_with_its_own_connection(settings):
    """With ORM_THREADS > 1 the chat's ORM calls do not queue on one thread: two calls that
    each hold their thread run at the same time, on different connections."""
    import asyncio
    import threading

    from django.db import connection

    from chatsite.db import orm

    assert settings.ORM_THREADS > 1  # the default on Postgres
    both_in = threading.Barrier(2)

    def hold_thread() -> tuple[str, int]:
        both_in.wait(timeout=5)  # fails unless the other call runs meanwhile
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return threading.current_thread().name, cursor.fetchone()[0]

    (first_thread, first_pid), (second_thread, second_pid) = await asyncio.gather(
        orm(hold_thread)(), orm(hold_thread)()
    )
    assert first_thread.startswith("orm") and second_thread.startswith("orm")
    assert first_thread != second_thread
    assert first_pid != second_pid


def test_the_query_log_sees_queries_of_every_thread():
    import threading

    from django.db import connections

    from chatsite.db import QueryLog

    def query() -> None:
        Conversation.objects.filter(pk=0).exists()

    def query_in_a_thread() -> None:
        query()
        connections.close_all()  # this thread's connection

    with QueryLog() as log:
        query()
        other = threading.Thread(target=query_in_a_thread)
        other.start()
        other.join()
    query()  # after the log is left: not seen
    assert len(log.sql) == 2
    assert all("conversations_conversation" in sql for sql in log.sql)


def test_a_large_batch_is_parsed_once_and_remembered():
    """psycopg parses a query's placeholders once for a batch of a turn's size (here 105
    parameters, over its limit of 50): the second run of the same batch finds it remembered."""
    from psycopg import _queries

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs a batch's statements one by one, without psycopg")
    conversation = ConversationFactory()
    statements = [
        insert_statement(Message(conversation=conversation, role="user", content=f"Hi {i}"))
        for i in range(5)
    ]
    assert sum(len(params) for _, params in statements) > 50
    run_together(statements)  # the first time on this connection, with its PREPARE
    run_together(statements[:0] + [insert_statement(Message(conversation=conversation,
                 role="user", content="Once more")) for _ in range(5)])  # fmt: skip
    before = _queries._query2pg_client.cache_info()
    run_together([insert_statement(Message(conversation=conversation, role="user", content="Again"))
                  for _ in range(5)])  # fmt: skip
    after = _queries._query2pg_client.cache_info()
    assert after.hits == before.hits + 1
    assert after.misses == before.misses


class Sent(list):
    """The SQL of each query this thread's connection sends (`connection.execute_wrapper`)."""

    def __call__(self, execute, sql, params, many, context):
        self.append(sql)
        return execute(sql, params, many, context)


def _prepared_on_this_connection() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def _unique(sql: str) -> str:
    """A statement text no earlier test prepared on this connection."""
    return f"{sql} /* {uuid.uuid4().hex} */"


def _title_read(conversation) -> tuple[str, list]:
    """A statement no earlier test prepared: the conversation's title."""
    return _unique("SELECT title FROM conversations_conversation WHERE id = %s"), [conversation.pk]


def _run_watched(*statements) -> tuple[list[list[tuple]], Sent]:
    """`run_together(statements)`: its rows, and the queries it sent."""
    sent = Sent()
    with connection.execute_wrapper(sent):
        return run_together(list(statements)), sent


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements: Postgres only (SQLite runs a batch one by one)")


def test_a_batchs_statement_is_prepared_once_per_connection_then_executed(postgres_only):
    conversation = ConversationFactory(title="Prepared")
    sql = _unique(
        "SELECT title FROM conversations_conversation WHERE id = %s AND title LIKE '%%p%%'"
    )
    sent = Sent()
    with connection.execute_wrapper(sent), QueryLog() as log:
        first = run_together([(sql, [conversation.pk])])
        second = run_together([(sql, [conversation.pk])])
    assert first == second == [[("Prepared",)]]
    [prepare, execute] = sent[0].split(SEPARATOR)
    assert prepare.startswith("PREPARE chatsite_") and "id = $1 AND title LIKE '%%p%%'" in prepare
    assert execute.startswith("EXECUTE chatsite_") and execute.endswith("(%s)")
    assert sent[1] == execute  # no PREPARE the second time
    name = execute.split()[1].split("(")[0]
    assert "id = $1" in _prepared_on_this_connection()[name]
    assert log.sql == [sql, sql]  # the query log shows what ran, not how it was sent


def test_prepared_statements_outlive_a_rollback(postgres_only):
    conversation = ConversationFactory(title="Kept")
    read = _title_read(conversation)
    with transaction.atomic():
        run_together([read])
        transaction.set_rollback(True)
    rows, sent = _run_watched(read)
    assert rows == [[("Kept",)]]
    assert sent[0].startswith("EXECUTE chatsite_")


def test_a_batch_that_fails_before_it_runs_leaves_the_next_one_to_prepare_again(postgres_only):
    """Which of its PREPAREs ran is not known: the connection's next batch starts over."""
    conversation = ConversationFactory(title="Again")
    good = _title_read(conversation)
    broken = (_unique("SELECT no_such_column FROM conversations_conversation WHERE id = %s"), [1])
    with pytest.raises(DatabaseError), transaction.atomic():
        run_together([good, broken])
    rows, sent = _run_watched(good)
    assert rows == [[("Again",)]]
    statements = sent[0].split(SEPARATOR)
    assert statements[0] == "DEALLOCATE ALL"
    assert statements[1].startswith("PREPARE chatsite_")
    assert len(statements) == 3


def test_a_statement_failing_as_it_runs_keeps_the_batchs_statements_prepared(postgres_only):
    """A budget check aborts its transaction by a division by zero: its PREPAREs had run."""
    conversation = ConversationFactory(title="Checked")
    read = _title_read(conversation)
    check = (_unique("SELECT 1 / %s"), [0])
    with pytest.raises(DatabaseError), transaction.atomic():
        run_together([read, check])
    rows, sent = _run_watched(read)
    assert rows == [[("Checked",)]]
    assert sent[0].startswith("EXECUTE chatsite_")


def test_without_prepared_statements_a_batch_goes_as_its_sql(postgres_only, settings):
    conversation = ConversationFactory(title="Plain")
    read = _title_read(conversation)
    run_together([read])  # prepared on this connection
    settings.DATABASE_PREPARED_STATEMENTS = False
    rows, sent = _run_watched(read)
    assert rows == [[("Plain",)]]
    assert sent == [read[0]]


def test_a_failed_batch_that_prepared_nothing_leaves_the_connection_as_it_was(postgres_only):
    conversation = ConversationFactory(title="Same")
    read = _title_read(conversation)
    run_together([read])  # prepared
    with pytest.raises(DatabaseError), transaction.atomic():
        run_together([read, ("LOCK TABLE no_such_table", [])])  # not a statement to prepare
    rows, sent = _run_watched(read)
    assert rows == [[("Same",)]]
    assert sent[0].startswith("EXECUTE chatsite_")
