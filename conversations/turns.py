"""A chat turn: save the user's message, start the reply, save the reply once.

Also the follow-ups on a reply: stop it, regenerate it, continue it.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Callable
from functools import partial

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Subquery
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone

from billing import budgets
from billing.models import LedgerEntry, Purpose
from chatsite.db import (
    Statement,
    bind,
    commit_with,
    commits_in_batch,
    compiled,
    ending_in_batch,
    insert_statement,
    new_ids,
    orm,
    per_vendor,
    run_together,
    saved,
    update_statement,
)
from conversations import context, recovery, streambuffer, tabs, throttle, titles
from conversations.claude.streaming import (
    ReplyRequest,
    apply_outcome,
    control_group_name,
    generate_reply,
    group_name,
    stop_key,
)
from conversations.generations import Generation, generations
from conversations.models import Conversation, Message
from ops import metrics
from ops.calls import alog_claude_call, log_claude_call

logger = logging.getLogger(__name__)

AFTER_REPLY_STATUSES = {
    Message.Status.STOPPED,
    Message.Status.INTERRUPTED,
    Message.Status.FAILED,
}


class TurnRejected(Exception):
    """The request cannot be carried out; the text says why, for the user."""


def clean_text(text: object) -> str:
    """Validate a message the user typed."""
    if not isinstance(text, str):
        raise TurnRejected("A message must be text.")
    text = text.replace("\x00", "").strip()
    if not text:
        raise TurnRejected("Type a message first.")
    if len(text) > settings.MESSAGE_MAX_CHARS:
        raise TurnRejected(
            f"That message is too long ({len(text):,} characters; "
            f"the limit is {settings.MESSAGE_MAX_CHARS:,})."
        )
    return text


def render_message(message: Message) -> str:
    return render_to_string("conversations/detail.html#message", {"message": message}).strip()


CONTEXT_FIELDS = ("id", "role", "content", "tokens")


def _locked(conversation_id: int) -> Conversation:
    # One turn at a time per conversation: the manager's state moves in order.
    return Conversation.objects.select_for_update().get(pk=conversation_id)


def _in_context(conversation: Conversation, *, upto_id: int | None = None) -> list[Message]:
    """Messages from the context start on: bounded by the budget, not by the history."""
    found = conversation.messages.only(*CONTEXT_FIELDS)
    if conversation.context_start_id is not None:
        found = found.filter(id__gte=conversation.context_start_id)
    if upto_id is not None:
        found = found.filter(id__lte=upto_id)
    return list(found.chronological())


def _plan(conversation: Conversation, messages: list[Message], prefill: str | None = None):
    try:
        plan = context.plan_context(
            messages=messages,
            model=conversation.effective_model,
            system=conversation.system_prompt,
            budget=conversation.budget,
            current_start=conversation.context_start_id,
            learnt_overhead=conversation.prompt_overhead_tokens,
            learnt_overhead_key=conversation.prompt_overhead_key,
            prefill=prefill,
            document=context.document_block(conversation.document_name, conversation.document_text)
            if conversation.document_text
            else "",
        )
    except context.ContextTooLarge as exc:
        raise TurnRejected(str(exc)) from exc
    if messages and messages[-1].role == Message.Role.USER:
        plan.question = messages[-1].content
    return plan


def _hold(conversation: Conversation, plan: context.ContextPlan) -> budgets.Hold:
    """The call's worst case, to hold against the budgets before anything is sent."""
    try:
        return budgets.Hold(
            user=conversation.user_id,
            model=conversation.effective_model,
            prompt_tokens=plan.prompt_estimate,
            max_tokens=conversation.effective_max_tokens,
            purpose=Purpose.CHAT,
            cache_ttl="5m",  # the prompt may be written to the cache
        )
    except budgets.BudgetExceeded as exc:
        metrics.record_budget_block(exc.scope)
        raise TurnRejected(str(exc)) from exc


def _held(hold: budgets.Hold, rows: list[list[tuple]]):
    """The reservation from the hold's rows, or TurnRejected (the caller's transaction then
    rolls back)."""
    outcome = hold.outcome(rows)
    if isinstance(outcome, budgets.BudgetExceeded):
        metrics.record_budget_block(outcome.scope)
        raise TurnRejected(str(outcome)) from outcome
    return outcome


def _reserve(conversation: Conversation, plan: context.ContextPlan):
    hold = _hold(conversation, plan)
    return _held(hold, run_together(hold.statements))


def _save_reply(conversation: Conversation, plan: context.ContextPlan, now) -> Message:
    """Insert the streaming reply and move the conversation's context: one round trip."""
    reply, statements = _reply_statements(conversation, plan, now)
    inserted, _ = run_together(statements)
    return saved(reply, inserted)


def _reply_statements(
    conversation: Conversation, plan: context.ContextPlan, now, pk: int | None = None
) -> tuple[Message, list[Statement]]:
    """The streaming reply (its id when taken ahead) and the statements that insert it and
    move the conversation's context; pass the first one's rows to `saved()`."""
    if settings.REDIS_URL:
        recovery.heartbeat()  # before the row exists, so no other process sweeps it
    reply = Message(
        pk=pk,
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=conversation.effective_model,
        context_start_id=plan.start_id,
        system_prompt=conversation.system_prompt,
        owner=recovery.PROCESS_ID,
        created_at=now,
    )
    conversation.context_start_id = plan.start_id
    conversation.context_tokens = plan.prompt_estimate
    conversation.updated_at = now
    table = connection.ops.quote_name(Conversation._meta.db_table)
    return reply, [
        insert_statement(reply),
        (
            f"UPDATE {table} SET context_start_id = %s, context_tokens = %s, "  # noqa: S608
            "updated_at = %s WHERE id = %s",
            [
                plan.start_id,
                plan.prompt_estimate,
                connection.ops.adapt_datetimefield_value(now),
                conversation.pk,
            ],
        ),
    ]


_CONVERSATION = -7_318_244_901  # stands for the conversation's id in the compiled queries


@per_vendor
def _starting_queries() -> tuple:
    """The queries that start a turn, compiled."""
    locked = [f.attname for f in Conversation._meta.concrete_fields]
    wanted = {*CONTEXT_FIELDS, "status"}
    fields = [f.attname for f in Message._meta.concrete_fields if f.attname in wanted]
    start = Conversation.objects.filter(pk=_CONVERSATION).values("context_start_id")
    lock = Conversation.objects.select_for_update().filter(pk=_CONVERSATION)
    read = Message.objects.filter(
        conversation_id=_CONVERSATION, id__gte=Coalesce(Subquery(start), 0)
    )
    return (
        locked,
        compiled(lock.values_list(*locked)),
        namedtuple("ContextMessage", fields),
        compiled(read.chronological().values_list(*fields)),
        new_ids(Message, 2),
    )


def _locked_with_context(conversation_id: int) -> tuple[Conversation, list[tuple], list[int]]:
    """The conversation, locked (one turn at a time per conversation: the manager's state
    moves in order), its messages from the context start on and, on Postgres, the ids of
    the turn's two messages, in one round trip. The read runs after the lock is held, so it
    sees any reply the previous turn started.

    The messages are named tuples of the fields the context manager reads, not model
    instances: a full context is hundreds of rows, and building a model per row was most
    of the turn's set-up time there (20 ms of it at 10,000 messages, now 6)."""
    locked, (lock_sql, lock_params), row_type, (read_sql, read_params), ids = _starting_queries()
    values = {_CONVERSATION: conversation_id}
    found, rows, *taken = run_together(
        [
            (lock_sql, bind(lock_params, values)),
            (read_sql, bind(read_params, values)),
            *([ids] if ids else []),
        ]
    )
    if not found:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    return (
        Conversation.from_db(connection.alias, locked, found[0]),
        list(map(partial(tuple.__new__, row_type), rows)),  # _make, without its check
        [row[0] for row in taken[0]] if taken else [],
    )


def _create_turn(conversation_id: int, text: str):
    """The turn's start. Two round trips on Postgres: lock + read + the new messages' ids;
    then the holds, the user's message, the reply, the conversation's context and the
    COMMIT, the budgets checked by the server before it (`budgets.Hold.checked`), so no row
    shared with other turns (the user's and the site's months) is locked across a round trip
    of this thread. A hold past a budget aborts that transaction, and the turn is tried once
    more the way that reads the holds back (`budgets.server_checked`), which
    frees expired holds in the way or refuses with the budget's own message. Four round
    trips on SQLite, where an id is known only after its insert."""
    return budgets.server_checked(partial(_start_turn, conversation_id, text))


def _start_turn(conversation_id: int, text: str, checked_on_server: bool):
    with ending_in_batch():
        now = timezone.now()
        conversation, earlier, ids = _locked_with_context(conversation_id)
        # A streaming reply is the newest message, so always in context: no query of its own.
        if any(m.status == Message.Status.STREAMING for m in earlier):
            raise TurnRejected("Wait for the reply to finish (or stop it) before sending more.")
        user_id, reply_id = ids or (None, None)
        user_message = Message(
            pk=user_id,
            conversation=conversation,
            role=Message.Role.USER,
            content=text,
            tokens=context.estimate_tokens(text),
            created_at=now,
        )
        # A refusal (too large for the token or money budget) rolls the message back:
        # nothing is saved and the text stays in the user's composer.
        plan = _plan(conversation, [*earlier, user_message])
        hold = _hold(conversation, plan)
        if user_id is None:  # no id yet: the plan gets it from the insert, then the reply
            *held, inserted = run_together([*hold.first, insert_statement(user_message)])
            plan.saved_newest(saved(user_message, inserted).pk)
            plan.reservation = _held(hold, held)
            reply = _save_reply(conversation, plan, now)
            commit_with(hold.last)
            return conversation, plan, user_message, reply
        # The plan was made with the ids.
        reply, more = _reply_statements(conversation, plan, now, pk=reply_id)
        mine = [insert_statement(user_message), *more]
        if checked_on_server and commits_in_batch():
            rows = commit_with([*hold.checked, *mine, *hold.last])
            held, rows = rows[: len(hold.checked)], rows[len(hold.checked) :]
            inserted, reply_inserted, *_ = rows
            plan.reservation = hold.reserved(held)
        else:
            *held, inserted, reply_inserted, _ = run_together([*hold.first, *mine])
            plan.reservation = _held(hold, held)
            commit_with(hold.last)  # the site's month (no cap: it cannot refuse), with the COMMIT
        saved(user_message, inserted)
        saved(reply, reply_inserted)
    return conversation, plan, user_message, reply


def _request(conversation: Conversation, plan: context.ContextPlan) -> ReplyRequest:
    return ReplyRequest(
        model=conversation.effective_model,
        max_tokens=conversation.effective_max_tokens,
        messages=plan.messages,
        system=plan.system,
    )


async def _check_limits(*, user_id: int, tokens: int) -> None:
    try:
        await throttle.check_rate_limits(user_id=user_id, tokens=tokens)
    except throttle.RateLimited as exc:
        metrics.record_rate_limited(exc.scope)
        raise TurnRejected(str(exc)) from exc


async def _broadcast(conversation_id: int, event: dict) -> None:
    """Tell every tab on the conversation, in any process."""
    layer = get_channel_layer()
    if tabs.reaches_every_tab(layer):
        await tabs.deliver(conversation_id, event)
    else:
        await layer.group_send(group_name(conversation_id), event)


def render_gauge(conversation: Conversation) -> str:
    return render_to_string(
        "conversations/detail.html#context-gauge", {"conversation": conversation}
    ).strip()


async def turn_start(*, conversation: Conversation, user_id: int, text: object) -> Message:
    """Save the user's message, then start the reply in the background; return the reply."""
    text = clean_text(text)
    # Limits come first, on an estimate of the prompt: a refused message is not saved and
    # stays in the user's composer.
    await _check_limits(
        user_id=user_id,
        tokens=conversation.context_tokens
        + context.estimate_tokens(text)
        + conversation.effective_max_tokens,
    )
    fresh, plan, user_message, reply = await orm(_create_turn)(conversation.pk, text)
    conversation.context_tokens = fresh.context_tokens  # the caller's copy stays current
    # The transaction has committed: clients only ever see rows that exist. The reply
    # starts even if telling the tabs fails; it is saved and shown on reload.
    generation = _start(fresh, reply, plan)
    await _announce(
        generation,
        lambda: {
            "type": "turn.created",
            "html": render_message(user_message) + render_message(reply),
            "gauge": render_gauge(fresh),
            "warning": plan.reservation.warning,
        },
    )
    return reply


def _start(conversation: Conversation, reply: Message, plan, text: str = "") -> Generation:
    generation = Generation.resuming(reply_id=reply.pk, conversation_id=conversation.pk, text=text)
    request = _request(conversation, plan)
    generations.start(generation, _run_reply(conversation, reply, plan, request, generation))
    return generation


async def _announce(generation: Generation, event: Callable[[], dict]) -> None:
    """Tell the tabs about a reply that has started: the call to Claude went out first (the
    reply's task started eagerly, up to its first wait: see `Generations.start`), the event
    is rendered while it is on its way, and the reply's frames wait for this one."""
    try:
        await _best_effort(_broadcast(generation.conversation_id, event()))
    finally:
        generation.announced.set()


async def _run_reply(
    conversation: Conversation,
    reply: Message,
    plan: context.ContextPlan,
    request: ReplyRequest,
    generation: Generation,
) -> None:
    """Generate, then always: save once, settle the budget, log, tell the tabs."""
    if generation.length:  # a continued reply: other processes catch up from the start
        await streambuffer.append(reply.pk, generation.text)
    with metrics.track_stream():
        outcome = await generate_reply(
            request=request, generation=generation, slots=throttle.call_slots()
        )
    text = generation.text
    if not outcome.final_usage and text:
        # Cut off before message_delta: the API's count is missing, bill the text we got.
        outcome.usage["output_tokens"] = max(
            outcome.usage.get("output_tokens", 0), context.estimate_tokens(text)
        )
    fields = apply_outcome(reply, outcome, text, counted=plan.learn and outcome.final_usage)
    try:
        saved = await orm(_finish_and_log)(conversation, reply, fields, plan, outcome)
    finally:
        await _best_effort(streambuffer.discard(reply.pk))
        await generation.announced.wait()  # the tabs have the reply to finish
        await _best_effort(
            _broadcast(
                reply.conversation_id,
                {
                    "type": "reply.finished",
                    "message_id": reply.pk,
                    "html": render_message(reply),
                    "gauge": render_gauge(conversation),
                },
            )
        )
    if (
        saved
        and reply.status == Message.Status.COMPLETE
        and conversation.title == Conversation.DEFAULT_TITLE
    ):
        await _name_conversation(conversation, reply, plan.question)


def _finish_and_log(
    conversation: Conversation, reply: Message, fields: list[str], plan, outcome
) -> bool:
    """`_finish_turn`, then the call's log record, in the same ORM call: under load each hop
    between the event loop and a thread waited for a turn of the busy loop, and this was the
    reply's last frame waiting twice (50 ms p50 per hop at 400 streams). Whether the reply
    was saved."""
    entry = None
    try:
        entry, saved = _finish_turn(conversation, reply, fields, plan, outcome)
        return saved
    finally:
        try:
            log_claude_call(
                request_id=outcome.request_id,
                user_id=conversation.user_id,
                conversation_id=conversation.pk,
                model=outcome.model,
                usage=outcome.usage,
                cost=entry.cost if entry is not None else None,
                ttft_ms=outcome.ttft_ms,
                duration_ms=outcome.duration_ms,
                stop_reason=outcome.stop_reason,
                status=outcome.status,
                error_kind=outcome.error_kind,
                purpose=Purpose.CHAT,
            )
        except Exception:  # a follow-up step: the reply is saved whatever happens to it
            logger.warning("logging the call failed", exc_info=True)


def _finish_turn(
    conversation: Conversation, reply: Message, fields: list[str], plan, outcome
) -> tuple[LedgerEntry, bool]:
    """Save the reply once, learn its counts and settle its call: one transaction.

    Returns the ledger row and whether the reply was saved. Whatever happens to the reply,
    the call is on the ledger and its hold released.
    """
    settle = partial(
        budgets.settle,
        plan.reservation,
        usage=outcome.usage,
        model=outcome.model,
        status=outcome.status,
        error_kind=outcome.error_kind,
        request_id=outcome.request_id,
        ttft_ms=outcome.ttft_ms,
        duration_ms=outcome.duration_ms,
        conversation=conversation.pk,
        message_id=reply.pk,
    )
    lock = _lock_statement(connection, conversation.pk, "KEY SHARE")  # see lock_conversation
    # The conversation's lock, the reply's save and its counts go with the hold's own lock,
    # the months, the ledger and the rollups and the COMMIT: one round trip, no ORM query
    # built per reply. If the conversation or the hold is gone by then, the server's check
    # aborts it, and the settlement is made again in two (the first finds out which).
    along = [
        *([lock] if lock else []),
        update_statement(reply, fields),
        *_count_turn(conversation, plan, outcome),
    ]

    def save_and_settle(on_server: bool) -> LedgerEntry:
        with ending_in_batch():
            return settle(
                conversation_exists=True,
                along=along,
                check_along=partial(_reply_saved, locked=lock is not None),  # the two-trip way
                last=True,
                on_server=on_server,
            )

    try:
        return budgets.server_checked(save_and_settle), True
    except _ConversationGone:
        return settle(), False  # the conversation was deleted: a ledger row without it
    except DatabaseError:
        entry = settle()  # in a transaction of its own
        if Message.objects.filter(pk=reply.pk).exists():
            # Not a deleted conversation: the row stays "streaming" until recovery marks it
            # interrupted.
            logger.exception("reply %s could not be saved", reply.pk)
        return entry, False


class _ConversationGone(Exception):
    """The conversation was deleted before its reply could be saved."""


def _reply_saved(rows: list[list[tuple]], *, locked: bool) -> None:
    """The conversation's lock (when `locked`) found its row, or _ConversationGone; then the
    reply's UPDATE found its row, or DatabaseError (as save())."""
    if locked:
        found, *rows = rows
        if not found:
            raise _ConversationGone
    if not rows[0]:
        raise DatabaseError("Save with update_fields did not affect any rows.")


def lock_conversation(conversation_id: int) -> bool:
    """Share-lock the conversation's row for this transaction; False if it is gone.

    Every deletion locks the row for update first (`lock_for_deletion`): either it waits
    for this transaction, and then finds (and unlinks) the ledger row written here, or this
    waits for the deletion and finds no row. Without it a reply settled while its
    conversation was being deleted kept a ledger row pointing at nothing. Both take the
    conversation's row before any message's, so they cannot deadlock. On SQLite (one writer
    at a time, and `orm` on channels' one thread) nothing is locked or read: a read first
    would make the transaction fail at once instead of waiting when another process writes.
    """
    return _lock_row(connection, conversation_id, "KEY SHARE")


def lock_for_deletion(sender, instance: Conversation, using: str, **kwargs) -> None:
    """`pre_delete` of a conversation, inside the deletion's transaction and before any of
    its rows (messages first) are touched: lock its row for update (see lock_conversation).
    Any deletion goes through it: the view, the admin, an account's, retention's."""
    _lock_row(connections[using], instance.pk, "UPDATE")


def _lock_row(wrapper, conversation_id: int, mode: str) -> bool:
    """Lock the conversation's row FOR `mode` on Postgres; whether it exists (True, and
    nothing read, elsewhere)."""
    statement = _lock_statement(wrapper, conversation_id, mode)
    if statement is None:
        return True
    with wrapper.cursor() as cursor:
        cursor.execute(*statement)
        return cursor.fetchone() is not None


def _lock_statement(wrapper, conversation_id: int, mode: str) -> Statement | None:
    """The statement locking the conversation's row FOR `mode` (a row if it exists), on
    Postgres; None elsewhere (see lock_conversation)."""
    if wrapper.vendor != "postgresql":
        return None
    table = wrapper.ops.quote_name(Conversation._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE id = %s FOR {mode}", [conversation_id]  # noqa: S608


async def _best_effort(step) -> None:
    """Run a follow-up step whose failure (a Redis blip) must not skip the others."""
    try:
        await step
    except Exception:
        logger.warning("follow-up step failed", exc_info=True)


async def _name_conversation(conversation: Conversation, reply: Message, question: str) -> None:
    """After the first reply, a cheap model writes the title (users can still rename).
    Two trips to the database: the hold; the settlement with the title."""
    try:
        reservation = await budgets.areserve(
            user=conversation.user_id,
            model=settings.TITLE_MODEL,
            prompt_tokens=context.estimate_tokens(question)
            + context.estimate_tokens(reply.content[:2000])
            + 60,
            max_tokens=titles.MAX_TOKENS,
            purpose=Purpose.TITLE,
        )
    except budgets.BudgetExceeded:
        return  # no budget left: the conversation keeps its default name
    title, response = await titles.generate_title(question=question, answer=reply.content)
    usage = titles.usage_of(response)
    model = getattr(response, "model", None) or settings.TITLE_MODEL
    status = "complete" if response is not None else "failed"
    request_id = getattr(response, "_request_id", None) or ""
    entry, titled = await orm(_settle_title)(
        reservation,
        title=title,
        usage=usage,
        model=model,
        status=status,
        request_id=request_id,
        conversation=conversation.pk,
    )
    await alog_claude_call(
        request_id=request_id,
        user_id=conversation.user_id,
        conversation_id=conversation.pk,
        model=model,
        usage=usage,
        cost=entry.cost,
        ttft_ms=None,
        duration_ms=None,
        stop_reason="",
        status=status,
        error_kind="" if response is not None else "title_failed",
        purpose=Purpose.TITLE,
    )
    if titled:
        conversation.title = title
        await _broadcast(
            conversation.pk,
            {
                "type": "conversation.titled",
                "html": render_to_string(
                    "conversations/list.html#sidebar-item",
                    {"item": conversation, "current": conversation},
                ).strip(),
                "title": title,
            },
        )


def _settle_title(
    reservation, *, title: str | None, conversation: int, **call
) -> tuple[LedgerEntry, bool]:
    """Settle the title call and save its title (unless the user named the conversation
    meanwhile) in one transaction; (the ledger row, whether the title was saved)."""
    with ending_in_batch():  # the settlement's last round trip commits
        exists = lock_conversation(conversation)  # see lock_conversation: a deletion waits
        titled = exists and bool(title) and titles.save_title(conversation, title)
        entry = budgets.settle(
            reservation,
            conversation=conversation if exists else None,
            conversation_exists=exists,
            last=True,
            **call,
        )
    return entry, titled


def _count_turn(conversation: Conversation, plan: context.ContextPlan, outcome) -> list[Statement]:
    """Learn exact token counts from the reply's usage: O(1) statements, whatever the history."""
    usage = outcome.usage
    if "input_tokens" not in usage:
        return []  # no response: nothing learnt
    written = usage.get("cache_creation_input_tokens", 0)
    read = usage.get("cache_read_input_tokens", 0)
    total_input = usage["input_tokens"] + written + read
    output = usage.get("output_tokens", 0)
    # Plain SQL: this runs once per reply, and the ORM's compiling of these two updates cost
    # more CPU than the database's executing them.
    totals = (
        "total_input_tokens = total_input_tokens + %s, "
        "total_cache_write_tokens = total_cache_write_tokens + %s, "
        "total_cache_read_tokens = total_cache_read_tokens + %s, "
        "total_output_tokens = total_output_tokens + %s"
    )
    params: list = [usage["input_tokens"], written, read, output]
    statements: list[Statement] = []
    if plan.learn:
        user_share, overhead = context.learn_from_usage(plan, total_input)
        statements.append(
            (
                "UPDATE conversations_message SET tokens = %s, tokens_exact = %s WHERE id = %s",
                [user_share, True, plan.newest_user_id],
            )
        )
        conversation.context_tokens = total_input + output
        conversation.prompt_overhead_tokens = overhead
        conversation.prompt_overhead_key = plan.overhead_key
        totals += ", context_tokens = %s, prompt_overhead_tokens = %s, prompt_overhead_key = %s"
        params += [conversation.context_tokens, overhead, plan.overhead_key]
    statements.append(
        (
            f"UPDATE conversations_conversation SET {totals} WHERE id = %s",  # noqa: S608
            [*params, conversation.pk],
        )
    )
    return statements


async def turn_stop(*, conversation: Conversation, message_id: object = None) -> None:
    """Stop the conversation's streaming replies (or one of them), wherever they run."""
    await stop_replies(conversation.pk, message_id if isinstance(message_id, int) else None)


async def stop_replies(conversation_id: int, message_id: int | None = None) -> None:
    """Tell every process to stop these replies; a flag catches one not yet listening."""
    streaming = Message.objects.filter(
        conversation_id=conversation_id, status=Message.Status.STREAMING
    )
    if message_id is not None:
        streaming = streaming.filter(pk=message_id)
    ids = [pk async for pk in streaming.values_list("pk", flat=True)]
    if ids:
        await cache.aset_many({stop_key(pk): 1 for pk in ids}, timeout=3600)
    layer = get_channel_layer()
    if tabs.reaches_every_tab(layer):  # one process: its registry holds every reply
        for generation in generations.running_in(conversation_id):
            if message_id in (None, generation.reply_id):
                generation.cancel()
        return
    await layer.group_send(
        control_group_name(conversation_id), {"type": "reply.stop", "message_id": message_id}
    )


def _latest_reply(conversation: Conversation, message_id: object) -> Message:
    try:
        reply = conversation.messages.get(pk=int(message_id), role=Message.Role.ASSISTANT)
    except (Message.DoesNotExist, TypeError, ValueError) as exc:
        raise TurnRejected("That reply no longer exists.") from exc
    if conversation.messages.filter(id__gt=reply.id).exists():
        raise TurnRejected("Only the latest reply can be regenerated or continued.")
    if reply.status not in AFTER_REPLY_STATUSES and reply.status != Message.Status.COMPLETE:
        raise TurnRejected("That reply is still being written.")
    return reply


def _question_of(reply: Message) -> int:
    """The id of the user message a reply answers (earlier replies may sit between)."""
    question = (
        Message.objects.filter(
            conversation_id=reply.conversation_id, role=Message.Role.USER, id__lt=reply.id
        )
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if question is None:
        raise TurnRejected("That reply has no question to answer.")
    return question


def _prepare_regenerate(conversation_id: int, message_id: object):
    with transaction.atomic():
        conversation = _locked(conversation_id)
        old = _latest_reply(conversation, message_id)
        plan = _plan(conversation, _in_context(conversation, upto_id=_question_of(old)))
        plan.reservation = _reserve(conversation, plan)
        reply = _save_reply(conversation, plan, timezone.now())
    return conversation, plan, reply


async def turn_regenerate(*, conversation: Conversation, user_id: int, message_id: object):
    """Write a new reply to the same user message; the old reply stays viewable."""
    await _check_limits(
        user_id=user_id, tokens=conversation.context_tokens + conversation.effective_max_tokens
    )
    fresh, plan, reply = await orm(_prepare_regenerate)(conversation.pk, message_id)
    generation = _start(fresh, reply, plan)
    await _announce(generation, lambda: {"type": "turn.created", "html": render_message(reply)})
    return reply


def _prepare_edit(conversation_id: int, message_id: object, text: str):
    with transaction.atomic():
        conversation = _locked(conversation_id)
        try:
            message = conversation.messages.get(pk=int(message_id), role=Message.Role.USER)
        except (Message.DoesNotExist, TypeError, ValueError) as exc:
            raise TurnRejected("That message no longer exists.") from exc
        later = conversation.messages.filter(id__gt=message.id)
        if later.filter(role=Message.Role.USER).exists():
            raise TurnRejected("Only your latest message can be edited.")
        if later.filter(status=Message.Status.STREAMING).exists():
            raise TurnRejected("Stop the reply (or let it finish) before editing.")
        message.content = text
        message.edited = True
        message.tokens = context.estimate_tokens(text)
        message.tokens_exact = False
        message.save(update_fields=["content", "edited", "tokens", "tokens_exact"])
        plan = _plan(conversation, _in_context(conversation, upto_id=message.id))
        plan.reservation = _reserve(conversation, plan)
        reply = _save_reply(conversation, plan, timezone.now())
    return conversation, plan, message, reply


async def turn_edit(
    *, conversation: Conversation, user_id: int, message_id: object, text: object
) -> Message:
    """Change the latest user message and answer it again; earlier replies stay viewable."""
    text = clean_text(text)
    await _check_limits(
        user_id=user_id,
        tokens=conversation.context_tokens + conversation.effective_max_tokens,
    )
    fresh, plan, message, reply = await orm(_prepare_edit)(conversation.pk, message_id, text)
    generation = _start(fresh, reply, plan)
    await _announce(
        generation,
        lambda: {
            "type": "turn.created",
            "html": render_message(reply),
            "replaced": render_message(message),
        },
    )
    return reply


def _prepare_continue(conversation_id: int, message_id: object):
    with transaction.atomic():
        conversation = _locked(conversation_id)
        reply = _latest_reply(conversation, message_id)
        if reply.status not in AFTER_REPLY_STATUSES or not reply.content:
            raise TurnRejected("Only a stopped or interrupted reply with text can be continued.")
        # The partial reply is the final assistant turn: Claude continues it.
        plan = _plan(
            conversation,
            _in_context(conversation, upto_id=_question_of(reply)),
            prefill=reply.content.rstrip(),
        )
        plan.reservation = _reserve(conversation, plan)
        reply.status = Message.Status.STREAMING
        reply.error_kind = ""
        reply.owner = recovery.PROCESS_ID
        reply.save(update_fields=["status", "error_kind", "owner"])
    return conversation, plan, reply


async def turn_continue(*, conversation: Conversation, user_id: int, message_id: object):
    """Ask Claude to carry on from where a cut-off reply stopped, in the same message."""
    await _check_limits(
        user_id=user_id, tokens=conversation.context_tokens + conversation.effective_max_tokens
    )
    fresh, plan, reply = await orm(_prepare_continue)(conversation.pk, message_id)
    generation = _start(fresh, reply, plan, text=reply.content)
    await _announce(
        generation,
        lambda: {"type": "reply.restarted", "message_id": reply.pk, "html": render_message(reply)},
    )
    return reply
