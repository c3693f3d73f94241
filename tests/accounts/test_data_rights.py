"""Data rights: download everything about yourself as JSON (and nothing about anyone else);
delete your account with your password (content gone, ledger anonymised, sessions ended)."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.data import end_sessions
from accounts.models import User
from billing import reports
from billing.models import LedgerEntry, UserBudget
from conversations.models import Conversation, Message
from review.feedback import rate_reply, report_reply
from review.models import Flag, Rating
from tests.billing.conftest import NOW, spend
from tests.factories import PASSWORD, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def life_of(person, *, words: str):
    """A conversation with a rated, reported reply and a ledger row."""
    conversation = ConversationFactory(user=person, title=f"Chat about {words}")
    MessageFactory(conversation=conversation, content=f"Tell me about {words}")
    reply = MessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=f"All about {words}",
        output_tokens=30000,
    )
    rate_reply(user=person, reply=reply, value="down", comment=f"Wrong about {words}")
    report_reply(user=person, reply=reply, category="inaccurate", note=f"Report on {words}")
    spend(person, "0.45", conversation=conversation, message_id=reply.pk)
    return conversation, reply


def signed_in(person) -> Client:
    client = Client()
    client.force_login(person)
    return client


def test_the_profile_page_offers_download_and_delete(user):
    page = signed_in(user).get("/accounts/profile/").content.decode()
    assert 'href="/accounts/profile/data.json"' in page
    assert 'action="/accounts/profile/delete/"' in page
    assert 'type="password"' in page


def test_my_data_holds_everything_of_mine_and_nothing_of_anyone_else(user, other_user):
    conversation, reply = life_of(user, words="otters")
    life_of(other_user, words="badgers")
    UserBudget.objects.create(user=user, monthly_usd="12.50")

    response = signed_in(user).get("/accounts/profile/data.json")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["profile"]["username"] == user.username
    assert data["profile"]["email"] == user.email
    [exported] = data["conversations"]
    assert exported["title"] == "Chat about otters"
    assert [m["content"] for m in exported["messages"]] == [
        "Tell me about otters",
        "All about otters",
    ]
    assert data["ratings"] == [
        {
            "message_id": reply.pk,
            "conversation_id": conversation.pk,
            "value": "down",
            "comment": "Wrong about otters",
            "created_at": data["ratings"][0]["created_at"],
            "updated_at": data["ratings"][0]["updated_at"],
        }
    ]
    assert [(f["source"], f["note"]) for f in data["flags"]] == [("report", "Report on otters")]
    [usage] = data["usage"]
    assert Decimal(usage["cost"]) == Decimal("0.45")  # exact, as a string
    assert usage["conversation_id"] == conversation.pk
    assert data["budget"] == {"monthly_usd": "12.50"}
    assert "badgers" not in response.content.decode()
    assert other_user.username not in response.content.decode()


def test_deleting_needs_the_right_password(user):
    conversation, _ = life_of(user, words="otters")
    response = signed_in(user).post("/accounts/profile/delete/", {"password": "not it"})
    assert response.status_code == 400
    assert b"That is not your password." in response.content
    assert User.objects.filter(pk=user.pk).exists()
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_deleting_removes_content_anonymises_the_ledger_and_ends_sessions(user, other_user):
    conversation, reply = life_of(user, words="otters")
    theirs, _ = life_of(other_user, words="badgers")
    month = reports.DateRange.month_of(NOW.date())
    totals_before = reports.totals(month)
    ledger_before = LedgerEntry.objects.count()
    phone = signed_in(user)  # another session of the same person
    laptop = signed_in(user)

    response = laptop.post("/accounts/profile/delete/", {"password": PASSWORD})

    assert response.status_code == 200
    assert b"Your account was deleted" in response.content
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(pk=reply.pk).exists()
    assert not Rating.objects.filter(user_id=user.pk).exists()
    assert not Flag.objects.filter(created_by_id=user.pk).exists()
    # The ledger keeps every row and every cent, without the person.
    assert LedgerEntry.objects.count() == ledger_before
    orphan = LedgerEntry.objects.exclude(user=other_user).get()
    assert (orphan.user_id, orphan.conversation_id, orphan.message_id) == (None, None, None)
    assert reports.totals(month) == totals_before
    # Every session ended; the other person is untouched.
    for client in (phone, laptop):
        assert client.get("/").status_code == 302
    sessions = [s.get_decoded().get("_auth_user_id") for s in Session.objects.all()]
    assert str(user.pk) not in sessions
    assert Conversation.objects.filter(pk=theirs.pk).exists()
    assert signed_in(other_user).get(f"/c/{theirs.pk}/").status_code == 200


def test_ending_sessions_signs_the_person_out_though_sessions_are_read_through_the_cache(
    user, other_user
):
    phone, laptop, theirs = signed_in(user), signed_in(user), signed_in(other_user)
    for client in (phone, laptop, theirs):  # each session now cached as well as stored
        assert client.get("/").status_code == 200

    assert end_sessions(user.pk) == 2

    for client in (phone, laptop):
        assert client.get("/").status_code == 302
    assert theirs.get("/").status_code == 200


def test_a_deleted_username_can_be_taken_again(user):
    username = user.username
    signed_in(user).post("/accounts/profile/delete/", {"password": PASSWORD})
    response = Client().post(
        "/accounts/signup/",
        {"username": username, "password1": "a-long-unusual-pw", "password2": "a-long-unusual-pw"},
    )
    assert response.status_code == 302
    assert User.objects.get(username=username).pk != user.pk


def test_spend_of_a_deleted_user_stays_in_the_site_totals(user):
    spend(user, "0.90", at=NOW - dt.timedelta(days=1))
    month = reports.DateRange.month_of(NOW.date())
    before = reports.totals(month)["cost"]
    signed_in(user).post("/accounts/profile/delete/", {"password": PASSWORD})
    assert reports.totals(month)["cost"] == before
    assert LedgerEntry.objects.filter(user__isnull=True).count() == 1
