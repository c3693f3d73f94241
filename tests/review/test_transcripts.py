"""Staff access to transcripts: only flagged or reported ones (admins any), always audited."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from review.access import transcript_for_staff
from review.feedback import rate_reply, report_reply
from review.models import AuditLog
from tests.review.conftest import make_reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def reported(user):
    reply = make_reply(user, text="A reply worth a look.")
    report_reply(user=user, reply=reply, category="inaccurate", note="wrong")
    return reply


def test_opening_a_review_item_writes_an_audit_row(client, reviewer, reported):
    client.force_login(reviewer)
    url = reverse("review:item", args=[reported.review_item.pk])
    client.get(url)
    row = AuditLog.objects.get()
    assert row.actor == reviewer
    assert row.actor_username == reviewer.username
    assert row.view == "review_item"
    assert row.conversation_id == reported.conversation_id
    assert row.owner_id == reported.conversation.user_id
    assert row.message_id == reported.pk
    assert row.path == url


def test_opening_a_transcript_writes_an_audit_row(client, reviewer, reported):
    client.force_login(reviewer)
    response = client.get(reverse("review:transcript", args=[reported.conversation_id]))
    assert "A reply worth a look." in response.content.decode()
    row = AuditLog.objects.get()
    assert (row.actor, row.view, row.conversation_id) == (
        reviewer,
        "transcript",
        reported.conversation_id,
    )


def test_every_view_is_a_new_row(client, reviewer, reported):
    client.force_login(reviewer)
    for _ in range(3):
        client.get(reverse("review:transcript", args=[reported.conversation_id]))
    client.get(reverse("review:item", args=[reported.review_item.pk]))
    views = list(AuditLog.objects.order_by("id").values_list("view", flat=True))
    assert views == ["transcript", "transcript", "transcript", "review_item"]


def test_staff_cannot_open_an_unflagged_conversation(client, reviewer, user):
    reply = make_reply(user, text="Private chat.")
    client.force_login(reviewer)
    response = client.get(reverse("review:transcript", args=[reply.conversation_id]))
    assert response.status_code == 403
    assert "Private chat." not in response.content.decode()
    assert not AuditLog.objects.exists()


def test_a_thumbs_up_does_not_open_a_conversation_to_staff(client, reviewer, user):
    reply = make_reply(user)
    rate_reply(user=user, reply=reply, value="up", comment="great")
    client.force_login(reviewer)
    response = client.get(reverse("review:transcript", args=[reply.conversation_id]))
    assert response.status_code == 403


def test_a_thumbs_down_opens_it(client, reviewer, user):
    reply = make_reply(user)
    rate_reply(user=user, reply=reply, value="down")
    client.force_login(reviewer)
    assert client.get(reverse("review:transcript", args=[reply.conversation_id])).status_code == 200


def test_admin_can_open_any_conversation_and_is_audited(client, admin, user):
    reply = make_reply(user, text="Private chat.")
    client.force_login(admin)
    response = client.get(reverse("review:transcript", args=[reply.conversation_id]))
    assert response.status_code == 200
    assert "Private chat." in response.content.decode()
    assert AuditLog.objects.get().actor == admin


def test_a_missing_conversation_is_404(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("review:transcript", args=[999999])).status_code == 404


def test_access_function_refuses_each_case(user, other_user, reviewer, admin, reported):
    unflagged = make_reply(user).conversation_id
    with pytest.raises(PermissionDenied):
        transcript_for_staff(user, reported.conversation_id)  # even the owner: not staff
    with pytest.raises(PermissionDenied):
        transcript_for_staff(reviewer, unflagged)
    with pytest.raises(Http404):
        transcript_for_staff(reviewer, "not-a-number")
    assert transcript_for_staff(reviewer, reported.conversation_id).pk == (reported.conversation_id)
    assert transcript_for_staff(admin, unflagged).pk == unflagged


def test_staff_controls_on_a_transcript_offer_flag_not_rating(client, reviewer, reported):
    client.force_login(reviewer)
    response = client.get(
        reverse("review:reply_controls", args=[reported.pk]), headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "Flag reply" in html
    assert "Good reply" not in html
    assert "In the review queue: Open" in html
