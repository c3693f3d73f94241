"""Search a user's own conversations: Postgres full-text search, a plain fallback elsewhere."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.contrib.postgres.search import (
    SearchHeadline,
    SearchQuery,
    SearchRank,
    SearchVector,
    SearchVectorField,
)
from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from conversations.models import Conversation, Message

# The text-search configuration of queries; the stored vector of message content
# (migration 0008) is built with the same one.
SEARCH_CONFIG = "english"
MAX_QUERY_CHARS = 200
# A title match weighs as much as two good message matches.
TITLE_WEIGHT = 2.0
SNIPPET_CHARS = 90  # plain fallback: characters either side of the first match


@dataclass(frozen=True)
class SearchHit:
    """One conversation that matches, with its highlighted title and best snippet."""

    conversation_id: int
    title: SafeString
    snippet: SafeString
    message_id: int | None
    matches: int
    rank: float

    @property
    def url(self) -> str:
        url = reverse("conversation_detail", args=[self.conversation_id])
        return f"{url}#message-{self.message_id}" if self.message_id else url


def clean_query(query: object) -> str:
    """Trim a typed query to something safe to send to the database."""
    if not isinstance(query, str):
        return ""
    return " ".join(query.replace("\x00", " ").split())[:MAX_QUERY_CHARS]


def search_conversations(user, query: str, *, limit: int = 20) -> list[SearchHit]:
    """Find this user's conversations matching query (web search syntax), best first."""
    query = clean_query(query)
    if not query:
        return []
    if connection.vendor == "postgresql":
        return _search_postgres(user, query, limit=limit)
    return search_conversations_plain(user, query, limit=limit)


def _search_postgres(user, query: str, *, limit: int) -> list[SearchHit]:
    tsquery = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
    content = message_vector()
    title = SearchVector("title", config=SEARCH_CONFIG)
    owned = Conversation.objects.for_user(user)

    # One row per matching conversation; the GIN index on the stored vector finds the rows.
    per_conversation = (
        Message.objects.filter(conversation__in=owned.values("id"))
        .annotate(document=content)
        .filter(document=tsquery)
        .values("conversation_id")
        .annotate(score=Sum(SearchRank(content, tsquery)), matches=Count("id"))
        .order_by()
    )
    scores = {row["conversation_id"]: row["score"] for row in per_conversation}
    matches = {row["conversation_id"]: row["matches"] for row in per_conversation}
    title_ranks = (
        owned.annotate(document=title)
        .filter(document=tsquery)
        .annotate(rank=SearchRank(title, tsquery))
        .values_list("id", "rank")
    )
    for conversation_id, rank in title_ranks:
        scores[conversation_id] = scores.get(conversation_id, 0.0) + TITLE_WEIGHT * rank
    top = sorted(scores, key=lambda pk: (-scores[pk], -pk))[:limit]
    if not top:
        return []

    best = dict(
        Message.objects.filter(conversation_id__in=top)
        .annotate(document=content)
        .filter(document=tsquery)
        .annotate(rank=SearchRank(content, tsquery))
        .order_by("conversation_id", "-rank", "-id")
        .distinct("conversation_id")
        .values_list("conversation_id", "id")
    )
    # ts_headline only for the few rows shown; sentinels mark the matches in plain text
    # so everything else can be escaped (message text is untrusted).
    start, stop = f"chsS{secrets.token_hex(6)}", f"chsE{secrets.token_hex(6)}"
    snippets = dict(
        Message.objects.filter(pk__in=best.values())
        .annotate(
            headline=SearchHeadline(
                "content",
                tsquery,
                config=SEARCH_CONFIG,
                start_sel=start,
                stop_sel=stop,
                min_words=12,
                max_words=30,
                max_fragments=2,
                fragment_delimiter=" … ",
            )
        )
        .values_list("id", "headline")
    )
    titles = dict(
        Conversation.objects.filter(pk__in=top)
        .annotate(
            headline=SearchHeadline(
                "title",
                tsquery,
                config=SEARCH_CONFIG,
                start_sel=start,
                stop_sel=stop,
                highlight_all=True,
            )
        )
        .values_list("id", "headline")
    )
    hits = []
    for pk in top:
        if pk not in titles:  # deleted meanwhile
            continue
        message_id = best.get(pk)
        snippet = snippets.get(message_id, "") if message_id else ""
        hits.append(
            SearchHit(
                conversation_id=pk,
                title=marked(titles[pk], start, stop),
                snippet=marked(snippet, start, stop),
                message_id=message_id,
                matches=matches.get(pk, 0),
                rank=float(scores[pk]),
            )
        )
    return hits


def message_vector() -> RawSQL:
    """Message content's stored search vector (a generated column, not a model field)."""
    return RawSQL('"conversations_message"."search_vector"', (), output_field=SearchVectorField())


def marked(text: str, start: str, stop: str) -> SafeString:
    """Escape text, then turn the start/stop sentinels into <mark> elements."""
    html = escape(text).replace(start, "<mark>").replace(stop, "</mark>")
    return mark_safe(html)  # noqa: S308 - escaped above; only our marks are markup


def query_terms(query: str) -> list[str]:
    """The words of a query, without web search operators."""
    words = re.findall(r"[^\s\"]+", query)
    return [w.lstrip("-") for w in words if w.lower() != "or" and w.lstrip("-")]


def search_conversations_plain(user, query: str, *, limit: int = 20) -> list[SearchHit]:
    """Case-insensitive substring search (SQLite): every term must appear."""
    terms = query_terms(clean_query(query))
    if not terms:
        return []
    owned = Conversation.objects.for_user(user)
    in_content = Q()
    in_title = Q()
    for term in terms:
        in_content &= Q(content__icontains=term)
        in_title &= Q(title__icontains=term)
    per_conversation = (
        Message.objects.filter(in_content, conversation__in=owned.values("id"))
        .values("conversation_id")
        .annotate(matches=Count("id"), best=Max("id"))
        .order_by()
    )
    found = {row["conversation_id"]: row for row in per_conversation}
    scores = {pk: float(row["matches"]) for pk, row in found.items()}
    for pk in owned.filter(in_title).values_list("id", flat=True):
        scores[pk] = scores.get(pk, 0.0) + TITLE_WEIGHT
    top = sorted(scores, key=lambda pk: (-scores[pk], -pk))[:limit]
    best_ids = [found[pk]["best"] for pk in top if pk in found]
    contents = dict(Message.objects.filter(pk__in=best_ids).values_list("id", "content"))
    titles = dict(Conversation.objects.filter(pk__in=top).values_list("id", "title"))
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    hits = []
    for pk in top:
        if pk not in titles:
            continue
        message_id = found[pk]["best"] if pk in found else None
        hits.append(
            SearchHit(
                conversation_id=pk,
                title=highlight_plain(titles[pk], pattern, whole=True),
                snippet=highlight_plain(contents.get(message_id, ""), pattern),
                message_id=message_id,
                matches=found[pk]["matches"] if pk in found else 0,
                rank=scores[pk],
            )
        )
    return hits


def highlight_plain(text: str, pattern: re.Pattern, *, whole: bool = False) -> SafeString:
    """Escape an excerpt of text around the first match, marking every match."""
    first = pattern.search(text)
    if not first:
        return escape(text if whole else text[: 2 * SNIPPET_CHARS])
    if not whole:
        begin = max(0, first.start() - SNIPPET_CHARS)
        end = min(len(text), first.end() + SNIPPET_CHARS)
        prefix = "… " if begin else ""
        suffix = " …" if end < len(text) else ""
        text = prefix + text[begin:end] + suffix
    parts, last = [], 0
    for match in pattern.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    parts.append(escape(text[last:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece is escaped
