"""Holds: conversations with a live review item are kept out of the retention purge."""

import pytest

from conversations.models import Conversation, Message
from review.feedback import flag_reply, rate_reply, report_reply
from review.holds import exclude_held, held_conversation_ids, is_held
from tests.review.conftest import make_reply

pytestmark = pytest.mark.django_db


def test_flagged_reported_and_thumbs_down_conversations_are_held(user, reviewer):
    flagged, reported, thumbs, liked, quiet = (make_reply(user) for _ in range(5))
    flag_reply(user=reviewer, reply=flagged, category="unsafe")
    report_reply(user=user, reply=reported, category="other")
    rate_reply(user=user, reply=thumbs, value="down")
    rate_reply(user=user, reply=liked, value="up")

    held = set(held_conversation_ids().values_list("conversation_id", flat=True))

    assert held == {flagged.conversation_id, reported.conversation_id, thumbs.conversation_id}
    assert is_held(flagged.conversation)
    assert not is_held(quiet.conversation_id)
    remaining = exclude_held(Conversation.objects.all())
    assert set(remaining.values_list("pk", flat=True)) == {
        liked.conversation_id,
        quiet.conversation_id,
    }


def test_resolved_stays_held_and_dismissed_releases(user, reviewer):
    resolved, dismissed = make_reply(user), make_reply(user)
    for reply in (resolved, dismissed):
        flag_reply(user=reviewer, reply=reply, category="inaccurate")
    resolved.review_item.resolve(by=reviewer, note="kept for evals")
    dismissed.review_item.dismiss(by=reviewer, note="fine")
    assert is_held(resolved.conversation_id)
    assert not is_held(dismissed.conversation_id)


def test_held_ids_work_as_a_purge_subquery(user, reviewer):
    held, free = make_reply(user), make_reply(user)
    flag_reply(user=reviewer, reply=held, category="unsafe")
    purgeable = Message.objects.exclude(conversation_id__in=held_conversation_ids())
    assert set(purgeable.values_list("conversation_id", flat=True)) == {free.conversation_id}
