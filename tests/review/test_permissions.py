"""Who may do what: every review page and action against every role, and refusals change nothing."""

import pytest
from django.urls import reverse

from review.feedback import rate_reply, report_reply
from review.models import AuditLog, Flag, Rating, ReviewItem
from tests.review.conftest import make_reply

pytestmark = pytest.mark.django_db

LOGIN = "login"

# endpoint: (url name, method, which object's id, POST data)
ENDPOINTS = {
    "queue": ("review:queue", "get", None, {}),
    "item": ("review:item", "get", "item", {}),
    "assign": ("review:item_assign", "post", "item", {"assignee": "REVIEWER"}),
    "item_flag": ("review:item_flag", "post", "item", {"category": "unsafe", "note": "no"}),
    "resolve": ("review:item_resolve", "post", "item", {"note": "Fixed the prompt."}),
    "dismiss": ("review:item_dismiss", "post", "item", {"note": "Not a problem."}),
    "reopen": ("review:item_reopen", "post", "closed_item", {}),
    "transcript": ("review:transcript", "get", "conversation", {}),
    "controls": ("review:reply_controls", "get", "reply", {}),
    "rate": ("review:reply_rate", "post", "reply", {"value": "down", "comment": "Wrong."}),
    "unrate": ("review:reply_unrate", "post", "reply", {}),
    "report": ("review:reply_report", "post", "reply", {"category": "inaccurate"}),
    "flag": ("review:reply_flag", "post", "reply", {"category": "unsafe", "note": "Bad."}),
}

STAFF_PAGES = {"queue", "item", "assign", "item_flag", "resolve", "dismiss", "reopen", "transcript"}
OWNER_ACTIONS = {"rate", "unrate", "report"}


def expected(role: str, endpoint: str) -> int:
    if role == "anonymous":
        return 302  # to the login page
    if role in ("reviewer", "admin"):
        if endpoint in OWNER_ACTIONS:
            return 404  # staff cannot rate or report someone else's reply
        if endpoint in ("assign", "item_flag", "resolve", "dismiss", "reopen"):
            return 302  # done, back to the item page
        return 200
    if endpoint in STAFF_PAGES or endpoint == "flag":
        return 403
    if role == "owner":
        return 200
    return 404  # another user (or staff without the reviewer role): not their reply


ROLES = ["anonymous", "owner", "other_user", "staff_without_group", "reviewer", "admin"]


@pytest.fixture
def world(user, reviewer):
    """A reported reply of `user` (rated up with a comment) and a closed item elsewhere."""
    reply = make_reply(user)
    rate_reply(user=user, reply=reply, value="up", comment="Nice")
    report_reply(user=user, reply=reply, category="other", note="Odd tone")
    closed = ReviewItem.open_for(make_reply(user))
    closed.resolve(by=reviewer, note="Done")
    return {
        "reply": reply,
        "item": reply.review_item,
        "conversation": reply.conversation,
        "closed_item": closed,
        "reviewer": reviewer,
    }


def snapshot():
    return (
        sorted(Rating.objects.values_list("message_id", "user_id", "value", "comment")),
        sorted(Flag.objects.values_list("item_id", "source", "category", "note")),
        sorted(ReviewItem.objects.values_list("id", "state", "assignee_id", "resolution_note")),
        AuditLog.objects.count(),
    )


def call(client, world, endpoint):
    name, method, target, data = ENDPOINTS[endpoint]
    args = [world[target].pk] if target else []
    data = {k: (world["reviewer"].pk if v == "REVIEWER" else v) for k, v in data.items()}
    send = getattr(client, method)
    return send(reverse(name, args=args), data, headers={"HX-Request": "true"})


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, request, world, role, endpoint):
    if role != "anonymous":
        person = request.getfixturevalue("user" if role == "owner" else role)
        client.force_login(person)
    before = snapshot()

    response = call(client, world, endpoint)

    assert response.status_code == expected(role, endpoint), response.content[:300]
    if role == "anonymous":
        assert response["Location"].startswith(reverse(LOGIN))
    if response.status_code in (403, 404) or role == "anonymous":
        assert snapshot() == before, "a refused request changed something"
    elif ENDPOINTS[endpoint][1] == "post":
        assert snapshot()[:3] != before[:3], "an allowed action changed nothing"


def test_staff_flag_is_refused_on_an_unflagged_conversation(client, reviewer, user):
    reply = make_reply(user)
    client.force_login(reviewer)
    response = client.post(reverse("review:reply_flag", args=[reply.pk]), {"category": "unsafe"})
    assert response.status_code == 403
    assert not ReviewItem.objects.filter(message=reply).exists()


def test_admin_can_flag_any_reply(client, admin, user):
    reply = make_reply(user)
    client.force_login(admin)
    response = client.post(
        reverse("review:reply_flag", args=[reply.pk]),
        {"category": "formatting", "note": "Broken table"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert Flag.objects.get(item__message=reply).category == "formatting"


def test_user_cannot_rate_a_user_message(client, user):
    reply = make_reply(user)
    question = reply.conversation.messages.get(role="user")
    client.force_login(user)
    response = client.post(reverse("review:reply_rate", args=[question.pk]), {"value": "up"})
    assert response.status_code == 404
    assert not Rating.objects.exists()
