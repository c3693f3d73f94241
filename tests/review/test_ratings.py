"""Rating a reply: create, change, comment, remove; thumbs down reaches the queue."""

import pytest
from django.db import IntegrityError
from django.template.loader import render_to_string
from django.urls import reverse

from conversations.models import Message
from review.feedback import flag_reply, rate_reply, remove_rating
from review.models import Rating, ReviewItem
from tests.review.conftest import make_reply

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def rate(client, reply, **data):
    return client.post(reverse("review:reply_rate", args=[reply.pk]), data, headers=HTMX)


def test_thumbs_up_creates_a_rating_and_shows_it_chosen(client, user, reply):
    client.force_login(user)
    response = rate(client, reply, value="up")
    assert response.status_code == 200
    assert Rating.objects.get(message=reply, user=user).value == "up"
    page = response.content.decode()
    assert 'value="up" class="thumb chosen"' in page
    assert 'aria-pressed="true" aria-label="Good reply"' in page


def test_rating_again_changes_it_and_keeps_the_comment(client, user, reply):
    client.force_login(user)
    rate(client, reply, value="down", comment="It got the capital wrong.")
    rate(client, reply, value="up")
    rating = Rating.objects.get(message=reply, user=user)
    assert (rating.value, rating.comment) == ("up", "It got the capital wrong.")
    assert Rating.objects.filter(message=reply).count() == 1


def test_saving_a_comment_replaces_it(client, user, reply):
    client.force_login(user)
    rate(client, reply, value="down", comment="first")
    response = rate(client, reply, value="down", comment="  second thoughts  ")
    assert Rating.objects.get(message=reply).comment == "second thoughts"
    assert "Your comment: second thoughts" in response.content.decode()


def test_remove_deletes_the_rating(client, user, reply):
    client.force_login(user)
    rate(client, reply, value="up", comment="good")
    response = client.post(reverse("review:reply_unrate", args=[reply.pk]), headers=HTMX)
    assert response.status_code == 200
    assert not Rating.objects.filter(message=reply).exists()
    assert "chosen" not in response.content.decode()


def test_an_invalid_value_is_refused(client, user, reply):
    client.force_login(user)
    response = rate(client, reply, value="meh")
    assert response.status_code == 400
    assert "Choose thumbs up or down." in response.content.decode()
    assert not Rating.objects.exists()


def test_one_rating_per_user_per_reply_is_a_database_rule(user, reply):
    Rating.objects.create(message=reply, user=user, value="up")
    with pytest.raises(IntegrityError):
        Rating.objects.create(message=reply, user=user, value="down")


def test_thumbs_down_puts_the_reply_in_the_queue(user, reply):
    rate_reply(user=user, reply=reply, value="down")
    item = ReviewItem.objects.get(message=reply)
    assert item.state == "open"
    assert item.conversation_id == reply.conversation_id


def test_withdrawing_an_untouched_thumbs_down_takes_it_out_of_the_queue(user, reply):
    rate_reply(user=user, reply=reply, value="down")
    rate_reply(user=user, reply=reply, value="up")
    assert not ReviewItem.objects.filter(message=reply).exists()


def test_withdrawing_keeps_an_item_that_staff_flagged(user, admin, reply):
    rate_reply(user=user, reply=reply, value="down")
    flag_reply(user=admin, reply=reply, category="inaccurate", note="Canberra")
    remove_rating(user=user, reply=reply)
    assert not Rating.objects.filter(message=reply).exists()
    assert ReviewItem.objects.filter(message=reply).exists()


def test_a_streaming_reply_cannot_be_rated(client, user):
    reply = make_reply(user)
    Message.objects.filter(pk=reply.pk).update(status="streaming")
    client.force_login(user)
    assert rate(client, reply, value="up").status_code == 404


def test_without_htmx_rating_returns_to_the_conversation(client, user, reply):
    client.force_login(user)
    response = client.post(reverse("review:reply_rate", args=[reply.pk]), {"value": "down"})
    assert response.status_code == 302
    assert response["Location"] == reverse("conversation_detail", args=[reply.conversation_id])
    assert Rating.objects.get(message=reply).value == "down"


def test_report_shows_thanks_and_enters_the_queue(client, user, reply):
    client.force_login(user)
    response = client.post(
        reverse("review:reply_report", args=[reply.pk]),
        {"category": "unsafe", "note": "Dangerous advice"},
        headers=HTMX,
    )
    assert "Reported. A reviewer will look at it." in response.content.decode()
    flag = ReviewItem.objects.get(message=reply).flags.get()
    assert (flag.source, flag.category, flag.note) == ("report", "unsafe", "Dangerous advice")


def test_message_partial_needs_no_user_and_loads_controls_lazily(user, reply):
    html = render_to_string("conversations/detail.html#message", {"message": reply})
    url = reverse("review:reply_controls", args=[reply.pk])
    assert f'id="review-{reply.pk}"' in html
    assert f'hx-get="{url}"' in html
    assert "chosen" not in html


@pytest.mark.parametrize("kind", ["user", "streaming"])
def test_message_partial_has_no_controls_for_user_or_streaming_messages(user, reply, kind):
    if kind == "user":
        message = reply.conversation.messages.get(role="user")
    else:
        Message.objects.filter(pk=reply.pk).update(status="streaming")
        message = Message.objects.get(pk=reply.pk)
    html = render_to_string("conversations/detail.html#message", {"message": message})
    assert "review-actions" not in html


def test_conversation_page_has_a_controls_slot_per_finished_reply(client, user, reply):
    client.force_login(user)
    page = client.get(reverse("conversation_detail", args=[reply.conversation_id]))
    assert page.content.decode().count('class="review-actions"') == 1
