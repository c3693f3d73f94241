"""The conversation manager: budget, whole turns, exact counts, and the prompt cache."""

import itertools
from dataclasses import dataclass

import anthropic
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conversations import context
from conversations.generations import generations
from conversations.models import Message
from fakeanthropic import Scripted, count_tokens, input_tokens
from tests.factories import ConversationFactory
from tests.sockets import collect_reply, open_socket, send_text


@dataclass
class Msg:
    id: int
    role: str
    content: str
    tokens: int | None = None


def conversation_of(sizes: list[int]) -> list[Msg]:
    """user/assistant alternating, ending with a user message; sizes are token shares."""
    messages = []
    for i, size in enumerate(sizes):
        role = "user" if (len(sizes) - 1 - i) % 2 == 0 else "assistant"
        messages.append(Msg(id=i + 1, role=role, content="x" * size, tokens=size))
    return messages


shares = st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=60)


@given(sizes=shares, budget=st.integers(min_value=50, max_value=5000), overhead=st.integers(0, 40))
@hsettings(max_examples=300, deadline=None)
def test_context_is_whole_turns_within_budget_with_the_newest_message(sizes, budget, overhead):
    messages = conversation_of(sizes)
    try:
        start = context.choose_start(
            messages, current_start=None, budget=budget, overhead=overhead, target_share=0.65
        )
    except context.ContextTooLarge:
        assert overhead + sizes[-1] > budget
        return
    chosen = messages[start:]
    assert overhead + sum(m.tokens for m in chosen) <= budget  # never over budget
    assert chosen[0].role == "user"  # starts with a user turn
    assert chosen[-1] is messages[-1]  # the newest user message is always there
    roles = [m.role for m in chosen]
    assert all(a != b for a, b in itertools.pairwise(roles))  # whole turns


@given(sizes=shares, budget=st.integers(min_value=200, max_value=5000))
@hsettings(max_examples=200, deadline=None)
def test_a_context_that_fits_keeps_its_start(sizes, budget):
    messages = conversation_of(sizes)
    try:
        first = context.choose_start(
            messages, current_start=None, budget=budget, overhead=0, target_share=0.65
        )
    except context.ContextTooLarge:
        return
    again = context.choose_start(
        messages, current_start=messages[first].id, budget=budget, overhead=0, target_share=0.65
    )
    assert again == first  # the prefix (and so the prompt cache) stays put


def test_trimming_goes_to_the_target_share_in_one_step():
    messages = conversation_of([100] * 21)  # 2,100 tokens
    start = context.choose_start(
        messages, current_start=1, budget=2000, overhead=0, target_share=0.5
    )
    kept = sum(m.tokens for m in messages[start:])
    assert kept <= 1000
    assert kept > 1000 - 200  # not more than one whole turn below the target


def test_a_message_larger_than_the_budget_is_refused_with_a_clear_error():
    messages = conversation_of([10, 10, 900])
    with pytest.raises(context.ContextTooLarge, match="does not fit"):
        context.choose_start(messages, current_start=None, budget=800, overhead=5, target_share=0.6)


def test_failed_replies_and_regenerations_are_sent_as_whole_turns():
    turns = [
        Msg(1, "user", "first"),
        Msg(2, "assistant", ""),  # failed with no text
        Msg(3, "user", "second"),
        Msg(4, "assistant", "old answer"),
        Msg(5, "assistant", "regenerated answer"),
        Msg(6, "user", "third"),
    ]
    assert context.plain_messages(turns) == [
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "regenerated answer"},
        {"role": "user", "content": "third"},
    ]


SYSTEM = "You are a careful assistant. " * 60
CACHEABLE_SYSTEM = "You are a careful assistant. " * 220  # over Sonnet's 1,024-token minimum


def fake_share(text: str) -> int:
    """What a message really adds to the fake API's prompt count (its documented rule)."""
    return count_tokens(text) + 3


async def test_counts_learnt_from_usage_match_the_api_including_after_a_trim(fake_api, settings):
    """Drive the manager through the real SDK for many turns and check every learnt count."""
    settings.CONTEXT_TRIM_TARGET = 0.6
    client = anthropic.AsyncAnthropic(
        api_key=settings.ANTHROPIC_API_KEY, base_url=fake_api.base_url, max_retries=0
    )
    history: list[Msg] = []
    start = overhead = None
    key = ""
    trims = 0
    for turn in range(14):
        history.append(Msg(len(history) + 1, "user", f"Question {turn}: " + "tell me more " * 12))
        history[-1].tokens = context.estimate_tokens(history[-1].content)
        plan = context.plan_context(
            messages=history, model="claude-sonnet-4-6", system=SYSTEM, budget=1400,
            current_start=start, learnt_overhead=overhead, learnt_overhead_key=key,
        )  # fmt: skip
        trims += plan.trimmed
        assert plan.prompt_estimate <= 1400
        fake_api.script(Scripted(text="Answer " + "detail " * 20))
        reply = await client.messages.create(
            model="claude-sonnet-4-6", max_tokens=200, system=plan.system, messages=plan.messages
        )
        usage = reply.usage
        total = (
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
        )
        assert total == input_tokens(fake_api.requests[-1]["body"])
        history[-1].tokens, overhead = context.learn_from_usage(plan, total)
        key, start = plan.overhead_key, plan.start_id
        history.append(Msg(len(history) + 1, "assistant", reply.content[0].text))
        history[-1].tokens = usage.output_tokens
    await client.close()
    assert trims >= 1
    users = [m for m in history if m.role == "user"]
    first_error = users[0].tokens - fake_share(users[0].content)  # an estimate, by design
    errors = [m.tokens - fake_share(m.content) for m in users[1:]]
    # Each later user message is exact up to the assistant reply's 3-token message overhead
    # (a reply's count is its output_tokens); the message after the first trim also carries
    # the first message's estimate error (it was folded into the overhead), once.
    off = [e for e in errors if abs(e) > 3]
    assert len(off) <= 1
    assert all(abs(e - first_error) <= 3 for e in off), f"{first_error} {errors}"


@pytest.mark.django_db(transaction=True)
class TestThroughTheSocket:
    @pytest.fixture(autouse=True)
    async def close_db_connections(self):
        yield
        await generations.wait_all()
        await sync_to_async(connections.close_all)()

    async def turn(self, communicator, text):
        await send_text(communicator, text)
        result = await collect_reply(communicator)
        return await Message.objects.aget(pk=result["reply_id"])

    async def test_cache_writes_then_reads_then_one_rewrite_after_a_trim(self, user, fake_api):
        conversation = await sync_to_async(ConversationFactory)(
            user=user, system_prompt=CACHEABLE_SYSTEM, token_budget=5000
        )
        system_tokens = count_tokens(CACHEABLE_SYSTEM)
        communicator, _, _ = await open_socket(user, conversation.pk)
        replies = []
        for turn in range(13):
            fake_api.script(Scripted(text="Reply " + "words " * 40))
            replies.append(await self.turn(communicator, f"Turn {turn} " + "question " * 130))
        await communicator.disconnect()
        await conversation.arefresh_from_db()

        first, second = replies[0], replies[1]
        assert first.cache_creation_input_tokens > system_tokens  # system + first turn written
        assert first.cache_read_input_tokens == 0
        assert second.cache_read_input_tokens == first.cache_read_input_tokens + (
            first.cache_creation_input_tokens
        )  # the whole previous prompt is read back
        starts = [r.context_start_id for r in replies]
        trims = [i for i in range(1, len(starts)) if starts[i] != starts[i - 1]]
        assert len(trims) == 1, f"one large trim step, saw starts {starts}"
        after = replies[trims[0]]
        assert after.cache_read_input_tokens < system_tokens + 20  # only the system block
        assert after.cache_creation_input_tokens > 0  # a single re-write of the new prefix
        for later in replies[trims[0] + 1 :]:
            assert later.cache_read_input_tokens > after.cache_read_input_tokens
        assert conversation.total_cache_read_tokens == sum(
            r.cache_read_input_tokens for r in replies
        )

    async def test_user_messages_get_exact_counts_and_old_turns_leave_the_context(
        self, user, fake_api, client
    ):
        conversation = await sync_to_async(ConversationFactory)(user=user, token_budget=500)
        communicator, _, _ = await open_socket(user, conversation.pk)
        for turn in range(8):
            fake_api.script(Scripted(text="Short reply " + "ok " * 20))
            await self.turn(communicator, f"Message {turn} " + "please " * 25)
        await communicator.disconnect()
        await conversation.arefresh_from_db()

        users = [m async for m in conversation.messages.filter(role="user").order_by("id")]
        assert all(m.tokens_exact for m in users)
        # The stored counts add up to what the API reported for the latest prompt.
        sent = [
            m
            async for m in conversation.messages.filter(
                id__gte=conversation.context_start_id, id__lte=users[-1].pk
            ).order_by("id")
        ]
        predicted = conversation.prompt_overhead_tokens + sum(m.tokens for m in sent)
        assert predicted == input_tokens(fake_api.requests[-1]["body"])
        assert conversation.context_start_id > users[0].pk
        assert conversation.context_tokens <= 500 + 100  # the prompt, plus the last reply
        await sync_to_async(client.force_login)(user)
        page = (await sync_to_async(client.get)(f"/c/{conversation.pk}/")).content.decode()
        assert page.count("out-of-context") >= 2
        assert 'id="context-gauge"' in page
