"""The review queue: filters, assignment, resolve and dismiss with a note, reopen."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from review.feedback import flag_reply, rate_reply, report_reply
from review.models import ReviewItem
from tests.review.conftest import make_reply

pytestmark = pytest.mark.django_db


def listed(client, **filters) -> set[int]:
    """The reply ids the queue lists for these filters."""
    response = client.get(reverse("review:queue"), filters)
    assert response.status_code == 200
    return {item.message_id for item in response.context["page"].object_list}


@pytest.fixture
def items(user, reviewer):
    unsafe = make_reply(user, model="claude-opus-4-6")
    report_reply(user=user, reply=unsafe, category="unsafe", note="")
    formatting = make_reply(user)
    flag_reply(user=reviewer, reply=formatting, category="formatting", note="table")
    thumbs = make_reply(user)
    rate_reply(user=user, reply=thumbs, value="down", comment="Meh")
    done = make_reply(user)
    flag_reply(user=reviewer, reply=done, category="inaccurate")
    done.review_item.resolve(by=reviewer, note="ok")
    return {"unsafe": unsafe, "formatting": formatting, "thumbs": thumbs, "done": done}


def test_default_queue_lists_open_and_in_review(client, reviewer, items):
    client.force_login(reviewer)
    assert listed(client) == {items[k].pk for k in ("unsafe", "formatting", "thumbs")}


def test_filter_by_state(client, reviewer, items):
    client.force_login(reviewer)
    assert listed(client, state="resolved") == {items["done"].pk}
    assert listed(client, state="all") == {r.pk for r in items.values()}


def test_filter_by_category(client, reviewer, items):
    client.force_login(reviewer)
    assert listed(client, category="unsafe") == {items["unsafe"].pk}
    assert listed(client, category="formatting") == {items["formatting"].pk}


def test_filter_by_model(client, reviewer, items):
    client.force_login(reviewer)
    assert listed(client, model="claude-opus-4-6") == {items["unsafe"].pk}


def test_filter_by_date(client, reviewer, items):
    long_ago = timezone.now() - datetime.timedelta(days=30)
    ReviewItem.objects.filter(message=items["thumbs"]).update(created_at=long_ago)
    client.force_login(reviewer)
    today = timezone.localdate().isoformat()
    assert items["thumbs"].pk not in listed(client, since=today)
    assert listed(client, until=(long_ago.date()).isoformat()) == {items["thumbs"].pk}


def test_filter_by_assignee(client, reviewer, items):
    items["unsafe"].review_item.assign(reviewer)
    client.force_login(reviewer)
    assert listed(client, assignee="me") == {items["unsafe"].pk}
    assert items["unsafe"].pk not in listed(client, assignee="nobody")


def test_htmx_filter_returns_only_the_results(client, reviewer, items):
    client.force_login(reviewer)
    response = client.get(
        reverse("review:queue"), {"category": "unsafe"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results">')
    assert "<html" not in html


def test_queue_shows_the_thumbs_down_comment(client, reviewer, items):
    client.force_login(reviewer)
    assert "Thumbs down: “Meh”" in client.get(reverse("review:queue")).content.decode()


def test_assign_puts_the_item_in_review(client, reviewer, items):
    item = items["unsafe"].review_item
    client.force_login(reviewer)
    client.post(reverse("review:item_assign", args=[item.pk]), {"assignee": reviewer.pk})
    item.refresh_from_db()
    assert (item.state, item.assignee) == ("in_review", reviewer)


def test_cannot_assign_to_someone_who_is_not_a_reviewer(client, reviewer, other_user, items):
    item = items["unsafe"].review_item
    client.force_login(reviewer)
    response = client.post(
        reverse("review:item_assign", args=[item.pk]), {"assignee": other_user.pk}
    )
    item.refresh_from_db()
    assert response.status_code == 400
    assert item.assignee is None


def test_resolve_with_a_note_closes_the_item(client, reviewer, items):
    item = items["unsafe"].review_item
    client.force_login(reviewer)
    response = client.post(reverse("review:item_resolve", args=[item.pk]), {"note": "Fixed"})
    item.refresh_from_db()
    assert response.status_code == 302
    assert (item.state, item.resolution_note, item.closed_by) == ("resolved", "Fixed", reviewer)
    assert item.closed_at is not None


def test_resolve_without_a_note_is_refused(client, reviewer, items):
    item = items["unsafe"].review_item
    client.force_login(reviewer)
    response = client.post(reverse("review:item_resolve", args=[item.pk]), {"note": "  "})
    item.refresh_from_db()
    assert response.status_code == 400
    assert item.state == "open"


def test_dismiss_with_a_note(client, reviewer, items):
    item = items["thumbs"].review_item
    client.force_login(reviewer)
    client.post(reverse("review:item_dismiss", args=[item.pk]), {"note": "Correct answer"})
    item.refresh_from_db()
    assert (item.state, item.resolution_note) == ("dismissed", "Correct answer")


def test_reopen_puts_a_closed_item_back(client, reviewer, items):
    item = items["done"].review_item
    client.force_login(reviewer)
    client.post(reverse("review:item_reopen", args=[item.pk]))
    item.refresh_from_db()
    assert item.state == "open"


def test_a_new_report_reopens_a_dismissed_item(user, reviewer, items):
    item = items["thumbs"].review_item
    item.dismiss(by=reviewer, note="fine")
    report_reply(user=user, reply=items["thumbs"], category="inaccurate")
    item.refresh_from_db()
    assert item.state == "open"


def test_flag_from_the_item_page(client, reviewer, items):
    item = items["thumbs"].review_item
    client.force_login(reviewer)
    client.post(
        reverse("review:item_flag", args=[item.pk]), {"category": "off_policy", "note": "Why"}
    )
    flag = item.flags.get()
    assert (flag.source, flag.category, flag.note, flag.created_by) == (
        "flag",
        "off_policy",
        "Why",
        reviewer,
    )


def test_item_page_shows_model_context_tokens_and_unknown_cost(client, reviewer, items):
    reply = items["unsafe"]
    client.force_login(reviewer)
    page = client.get(reverse("review:item", args=[reply.review_item.pk])).content.decode()
    assert "claude-opus-4-6" in page
    assert '<pre class="review-context" id="system-prompt">Be concise.</pre>' in page
    assert '<pre class="review-context">What is the capital?</pre>' in page
    assert "<td>120</td>" in page and "<td>9</td>" in page
    assert '<td id="reply-cost">—</td>' in page


def test_item_page_marks_messages_outside_the_context(client, reviewer, user):
    reply = make_reply(user)
    conversation = reply.conversation
    from conversations.models import Message

    later_question = Message.objects.create(conversation=conversation, role="user", content="Q2")
    later_reply = Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="A2",
        context_start_id=later_question.pk,
        system_prompt="",
    )
    report_reply(user=user, reply=later_reply, category="other")
    client.force_login(reviewer)
    response = client.get(reverse("review:item", args=[later_reply.review_item.pk]))
    assert response.context["context_ids"] == {later_question.pk}
    assert response.context["sent_messages"] == [{"role": "user", "content": "Q2"}]
    assert "not in context" in response.content.decode()
