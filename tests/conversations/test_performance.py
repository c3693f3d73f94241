"""Issue 6: a turn's cost does not grow with the history, and bytes grow with the reply only.

The figures themselves are bench/'s (make bench); these are the fast guards.
"""

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from chatsite.db import QueryLog
from conversations.generations import generations
from conversations.models import Message
from tests.factories import ConversationFactory
from tests.sockets import collect_reply, open_socket, send_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await generations.wait_all()
    await sync_to_async(connections.close_all)()


def add_history(conversation, count: int) -> None:
    """`count` earlier complete messages with exact shares, ending with a reply."""
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role="assistant" if (count - 1 - i) % 2 == 0 else "user",
            content=f"Earlier message {i} about nothing in particular.",
            tokens=12,
            tokens_exact=True,
            created_at=now,
        )
        for i in range(count)
    )


async def queries_of_a_turn(user, *, earlier: int) -> int:
    """Queries of one turn (message sent to reply finished) after `earlier` messages."""
    conversation = await sync_to_async(ConversationFactory)(user=user)
    await sync_to_async(add_history)(conversation, earlier - 2)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    # A first turn sets the context start and learns the prompt overhead, as in any
    # conversation that already has a history; the counted turn is the next one.
    await send_text(communicator, "[[fake:tokens=5]] Warm up")
    await collect_reply(communicator)
    await generations.wait_all()
    # The turn's ORM calls run on a pool of threads (chatsite.db.orm): count on every one.
    with QueryLog() as log:
        await send_text(communicator, "[[fake:tokens=5]] Counted")
        result = await collect_reply(communicator)
        await generations.wait_all()
    await communicator.disconnect()
    assert 'data-status="complete"' in result["final"]
    assert await Message.objects.filter(conversation=conversation).acount() == earlier + 2
    return len(log.sql)


async def test_a_turn_makes_the_same_queries_after_10_and_1000_messages(user):
    short_history = await queries_of_a_turn(user, earlier=10)
    long_history = await queries_of_a_turn(user, earlier=1000)
    assert short_history > 0, "the capture saw the turn's queries"
    assert long_history == short_history


async def bytes_of_a_turn(user, tokens: int) -> int:
    """WebSocket payload bytes the client receives for one turn with a `tokens` reply."""
    conversation = await sync_to_async(ConversationFactory)(user=user)
    communicator, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await send_text(communicator, f"[[fake:tokens={tokens}]] How long?")
    result = await collect_reply(communicator)
    await communicator.disconnect()
    assert 'data-status="complete"' in result["final"]
    return sum(len(frame.encode()) for frame in result["frames"])


@pytest.fixture
def sparse_deltas(fake_api):
    """Deltas of 100 tokens, 100 ms apart: as at Claude's real pace each delta is a frame of
    its own (frames are coalesced to 50 ms), so the frame count follows the reply's length,
    not the time it took or the machine's load; and the test stays fast."""
    before = fake_api.tokens_per_delta
    fake_api.configure(tokens_per_delta=100, tokens_per_second=1000)
    yield fake_api
    fake_api.configure(tokens_per_delta=before)


async def test_bytes_for_a_2000_token_reply_are_20_times_those_of_a_100_token_reply(
    user, sparse_deltas
):
    # A turn also sends frames whose size does not depend on the reply (the composer reset,
    # the user's message, the reply's chrome and buttons): those of a turn whose reply is
    # one token are set aside, so 101 and 2,001 tokens leave the bytes of 100 and 2,000.
    fixed = await bytes_of_a_turn(user, 1)
    short = await bytes_of_a_turn(user, 101) - fixed
    long = await bytes_of_a_turn(user, 2001) - fixed
    assert abs(long - 20 * short) <= 0.1 * 20 * short, (fixed, short, long)


def test_a_long_conversations_context_is_read_in_order_from_its_index(user):
    """The planner's statistics say a conversation has a couple of messages (taken before one
    grew to 2,000): the context read still walks msg_conv_order from the context's start, in
    order, and reads no other message. (With Message.conversation's own index it took that
    one, read the whole conversation and sorted it.)"""
    from django.db import connection

    from chatsite.db import bind
    from conversations import turns

    if connection.vendor != "postgresql":
        pytest.skip("Postgres' planner")
    for _ in range(20):
        add_history(ConversationFactory(user=user), 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_message")
    long = ConversationFactory(user=user)
    add_history(long, 2_000)
    ids = list(long.messages.order_by("id").values_list("id", flat=True))
    long.context_start_id = ids[-100]
    long.save(update_fields=["context_start_id"])

    *_, (read_sql, read_params), _ = turns._starting_queries()
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + read_sql,
            bind(read_params, {turns._CONVERSATION: long.pk}),
        )
        [[[explained]]] = cursor.fetchall()

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    plan = list(nodes(explained["Plan"]))
    scans = [n for n in plan if n.get("Relation Name") == "conversations_message"]
    assert [n.get("Index Name") for n in scans] == ["msg_conv_order"]
    assert scans[0]["Actual Rows"] == 100
    assert scans[0].get("Rows Removed by Filter", 0) == 0
    assert not [n for n in plan if n["Node Type"] == "Sort"]
