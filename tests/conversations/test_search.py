"""Search across one's own conversations: ranking, snippets, escaping, access, bad queries."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from conversations.models import Message
from conversations.search import search_conversations, search_conversations_plain
from tests.factories import ConversationFactory, MessageFactory
from tests.html_checks import dangerous_markup

pytestmark = pytest.mark.django_db

HOSTILE = 'kubernetes <img src=x onerror=alert(1)> "quoted" & <script>alert(2)</script>'


def say(conversation, *texts, role=Message.Role.USER):
    return [MessageFactory(conversation=conversation, content=text, role=role) for text in texts]


def test_title_and_several_messages_rank_above_a_single_mention(user):
    strong = ConversationFactory(user=user, title="Kubernetes upgrade plan")
    say(strong, "Upgrading kubernetes nodes", "Then kubernetes control plane", "Unrelated")
    weak = ConversationFactory(user=user, title="Holiday notes")
    say(weak, "I read about kubernetes once", "Beaches and mountains")
    newest = ConversationFactory(user=user, title="Nothing relevant")  # no match at all
    say(newest, "Cooking pasta")

    hits = search_conversations(user, "kubernetes")

    assert [hit.conversation_id for hit in hits] == [strong.pk, weak.pk]
    assert hits[0].rank > hits[1].rank
    assert hits[0].matches == 2 and hits[1].matches == 1


def test_stemming_finds_other_forms_of_a_word(user):
    conversation = ConversationFactory(user=user, title="Misc")
    say(conversation, "We were deploying the service all night")
    assert [h.conversation_id for h in search_conversations(user, "deployment")] == [
        conversation.pk
    ]


def test_snippet_marks_the_term_and_links_to_the_best_message(user):
    conversation = ConversationFactory(user=user, title="Databases")
    say(conversation, "Tables and rows")
    best = say(
        conversation,
        "Postgres vacuum keeps postgres healthy; tune autovacuum for postgres.",
        role=Message.Role.ASSISTANT,
    )[0]
    say(conversation, "Postgres once")

    (hit,) = search_conversations(user, "postgres")

    assert "<mark>Postgres</mark>" in hit.snippet
    assert hit.message_id == best.pk
    assert hit.url == f"/c/{conversation.pk}/#message-{best.pk}"


def test_title_is_highlighted(user):
    conversation = ConversationFactory(user=user, title="Trip to <Lisbon> & Porto")
    (hit,) = search_conversations(user, "porto")
    assert hit.title == "Trip to &lt;Lisbon&gt; &amp; <mark>Porto</mark>"
    assert hit.message_id is None and hit.url == f"/c/{conversation.pk}/"


def test_hostile_message_text_stays_escaped_in_snippets(user):
    conversation = ConversationFactory(user=user, title="<b>Cluster</b>")
    say(conversation, HOSTILE)

    (hit,) = search_conversations(user, "kubernetes")

    assert "&lt;img src=x onerror=alert(1)&gt;" in hit.snippet
    assert dangerous_markup(hit.snippet) == []
    assert dangerous_markup(hit.title) == []
    assert re.sub(r"</?mark>", "", hit.snippet).count("<") == 0  # only our marks are markup


def test_hostile_text_is_escaped_on_the_results_page(client, user):
    conversation = ConversationFactory(user=user, title="Cluster <script>alert(3)</script>")
    say(conversation, HOSTILE)
    client.force_login(user)

    page = client.get(reverse("conversation_search"), {"q": "kubernetes"}).content.decode()

    results = page[page.index('<ol class="hits">') : page.index("</ol>")]
    assert "<mark>kubernetes</mark>" in results
    assert dangerous_markup(results) == []


def test_sentinels_cannot_be_forged_by_message_text(user):
    conversation = ConversationFactory(user=user)
    say(conversation, "kubernetes chsS000000000000 chsE000000000000 <mark>fake</mark>")
    (hit,) = search_conversations(user, "kubernetes")
    assert hit.snippet.count("<mark>") == 1  # ours, around the match
    assert "chsS000000000000" in hit.snippet


def test_other_users_conversations_never_appear(client, user, other_user):
    mine = ConversationFactory(user=user, title="Shared word zebra")
    theirs = ConversationFactory(user=other_user, title="Zebra zebra zebra")
    say(theirs, "zebra zebra", "zebra")
    client.force_login(user)

    assert [h.conversation_id for h in search_conversations(user, "zebra")] == [mine.pk]
    assert [h.conversation_id for h in search_conversations_plain(user, "zebra")] == [mine.pk]
    page = client.get(reverse("conversation_search"), {"q": "zebra"}).content.decode()
    assert f"/c/{theirs.pk}/" not in page


@pytest.mark.parametrize(
    "query",
    ['"unclosed', "(((", "a & | ! :*", "-", "or", "the", "\x00null", "x" * 5000, "'; drop"],
)
def test_odd_queries_do_not_fail(client, user, query):
    say(ConversationFactory(user=user), "ordinary words")
    client.force_login(user)
    response = client.get(reverse("conversation_search"), {"q": query})
    assert response.status_code == 200
    assert search_conversations_plain(user, query) == []


def test_web_search_syntax_phrases_and_exclusions(user):
    both = ConversationFactory(user=user, title="A")
    say(both, "red apple pie")
    apart = ConversationFactory(user=user, title="B")
    say(apart, "apple trees, red barns")
    assert {h.conversation_id for h in search_conversations(user, "red apple")} == {
        both.pk,
        apart.pk,
    }
    assert [h.conversation_id for h in search_conversations(user, '"red apple"')] == [both.pk]
    assert [h.conversation_id for h in search_conversations(user, "apple -pie")] == [apart.pk]


def test_results_page_lists_hits_with_links_to_the_message(client, user):
    conversation = ConversationFactory(user=user, title="Garden")
    (message,) = say(conversation, "Tomatoes need sun")
    client.force_login(user)

    page = client.get(reverse("conversation_search"), {"q": "tomato"}).content.decode()

    assert f'href="/c/{conversation.pk}/#message-{message.pk}"' in page
    assert 'value="tomato"' in page  # the sidebar box keeps the query


def test_search_needs_login(client):
    response = client.get(reverse("conversation_search"), {"q": "x"})
    assert response.status_code == 302


def test_message_search_uses_the_gin_index(user):
    conversation = ConversationFactory(user=user)
    say(conversation, "index me please", "and me")
    from django.contrib.postgres.search import SearchQuery

    from conversations.search import SEARCH_CONFIG, message_vector

    query = (
        Message.objects.annotate(document=message_vector())
        .filter(document=SearchQuery("index", search_type="websearch", config=SEARCH_CONFIG))
        .values("id")
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()
    assert "msg_search_vector" in plan


def test_the_stored_vector_follows_edits(user):
    conversation = ConversationFactory(user=user)
    (message,) = say(conversation, "first draft about otters")
    message.content = "second draft about beavers"
    message.save(update_fields=["content"])
    assert search_conversations(user, "otters") == []
    assert [h.message_id for h in search_conversations(user, "beavers")] == [message.pk]


def test_plain_fallback_ranks_escapes_and_marks(user):
    strong = ConversationFactory(user=user, title="Kubernetes notes")
    say(strong, "kubernetes one", "kubernetes two")
    weak = ConversationFactory(user=user, title="Other")
    (hostile,) = say(weak, HOSTILE)

    hits = search_conversations_plain(user, "Kubernetes")

    assert [h.conversation_id for h in hits] == [strong.pk, weak.pk]
    assert hits[0].title == "<mark>Kubernetes</mark> notes"
    assert hits[1].message_id == hostile.pk
    assert "<mark>kubernetes</mark> &lt;img" in hits[1].snippet
    assert dangerous_markup(hits[1].snippet) == []


def test_plain_fallback_needs_every_term(user):
    both = ConversationFactory(user=user, title="T")
    say(both, "alpha and beta")
    one = ConversationFactory(user=user, title="U")
    say(one, "alpha only")
    assert [h.conversation_id for h in search_conversations_plain(user, "beta alpha")] == [both.pk]


def test_plain_fallback_snippet_is_an_excerpt_around_the_match(user):
    conversation = ConversationFactory(user=user)
    say(conversation, "x" * 500 + " needle " + "y" * 500)
    (hit,) = search_conversations_plain(user, "needle")
    assert hit.snippet.startswith("… ") and hit.snippet.endswith(" …")
    assert "<mark>needle</mark>" in hit.snippet
    assert len(hit.snippet) < 260
