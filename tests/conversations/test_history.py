"""Long conversations: the newest page first, older pages by keyset, constant cost."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations.models import Conversation, Message
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def long_conversation(user, count: int) -> tuple[Conversation, list[int]]:
    conversation = ConversationFactory(user=user)
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role=Message.Role.USER if n % 2 == 0 else Message.Role.ASSISTANT,
            content=f"Line {n} with **markdown**",
        )
        for n in range(count)
    )
    ids = list(conversation.messages.order_by("id").values_list("id", flat=True))
    return conversation, ids


def article_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article id="message-(\d+)"', html)]


def sentinel_before(html: str) -> int | None:
    found = re.search(r'class="older-messages" hx-get="[^"]*\?before=(\d+)"', html)
    return int(found.group(1)) if found else None


def test_detail_shows_the_newest_50_and_a_sentinel_for_older(client, user):
    conversation, ids = long_conversation(user, 120)
    client.force_login(user)

    page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()

    assert article_ids(page) == ids[-50:]
    assert sentinel_before(page) == ids[-50]
    assert 'hx-trigger="intersect once"' in page
    assert page.index('class="older-messages"') < page.index('<article id="message-')


def test_no_sentinel_when_everything_fits(client, user):
    conversation, ids = long_conversation(user, 50)
    client.force_login(user)
    page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert article_ids(page) == ids
    assert "older-messages" not in page


def test_older_pages_come_back_in_order_until_the_first_message(client, user):
    conversation, ids = long_conversation(user, 120)
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])

    second = client.get(url, {"before": ids[-50]}, **HTMX).content.decode()
    assert article_ids(second) == ids[-100:-50]
    assert sentinel_before(second) == ids[-100]
    assert "<html" not in second  # a fragment for htmx

    last = client.get(url, {"before": ids[-100]}, **HTMX).content.decode()
    assert article_ids(last) == ids[:20]
    assert sentinel_before(last) is None


def test_through_loads_back_to_a_search_hit_in_one_request(client, user):
    conversation, ids = long_conversation(user, 400)
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])

    page = client.get(url, {"before": ids[-50], "through": ids[10]}, **HTMX).content.decode()

    assert article_ids(page) == ids[10:-50]
    assert sentinel_before(page) == ids[10]  # older ones still load on scroll


def test_older_page_marks_messages_that_left_the_context(client, user):
    conversation, ids = long_conversation(user, 120)
    Conversation.objects.filter(pk=conversation.pk).update(context_start_id=ids[-60])
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])

    page = client.get(url, {"before": ids[-50]}, **HTMX).content.decode()

    assert re.search(rf'id="message-{ids[-61]}" class="[^"]*out-of-context', page)
    assert not re.search(rf'id="message-{ids[-60]}" class="[^"]*out-of-context', page)


def test_older_page_without_javascript_is_a_whole_page(client, user):
    conversation, ids = long_conversation(user, 120)
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])

    page = client.get(url, {"before": ids[-50]}).content.decode()

    assert "<html" in page and "Back to the latest messages" in page
    assert article_ids(page) == ids[-100:-50]
    assert f'href="{url}?before={ids[-100]}"' in page


def test_older_messages_of_someone_else_are_not_found(client, user, other_user):
    conversation, ids = long_conversation(other_user, 60)
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])
    assert client.get(url, {"before": ids[-1]}, **HTMX).status_code == 404


@pytest.mark.parametrize("params", [{}, {"before": "x"}, {"before": "5", "through": "y"}])
def test_a_bad_cursor_is_a_bad_request(client, user, params):
    conversation, _ = long_conversation(user, 3)
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])
    assert client.get(url, params, **HTMX).status_code == 400


def queries_to_open(client, conversation) -> int:
    url = reverse("conversation_detail", args=[conversation.pk])
    client.get(url)  # warm: session, caches
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_opening_costs_the_same_queries_for_50_and_2000_messages(client, user):
    short, _ = long_conversation(user, 50)
    lengthy, _ = long_conversation(user, 2000)
    client.force_login(user)
    assert queries_to_open(client, lengthy) == queries_to_open(client, short)


def test_scrolling_back_costs_the_same_queries_anywhere_in_the_history(client, user):
    conversation, ids = long_conversation(user, 2000)
    client.force_login(user)
    url = reverse("conversation_messages", args=[conversation.pk])
    counts = []
    for before in (ids[-50], ids[1000], ids[60]):
        with CaptureQueriesContext(connection) as captured:
            client.get(url, {"before": before}, **HTMX)
        counts.append(len(captured.captured_queries))
    assert len(set(counts)) == 1
    assert not any("OFFSET" in q["sql"] for q in captured.captured_queries)
