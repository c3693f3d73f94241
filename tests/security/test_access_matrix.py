"""Every URL and the WebSocket route, as anonymous, owner, another user, staff and admin.

The matrix must name every named route (a new URL without an entry fails
test_every_named_route_is_in_the_matrix). Each cell is the status that role gets; where
the role is refused, the owner's content is not in the response and nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from batches.models import BatchJob
from chatsite.routing import websocket_urlpatterns
from conversations.models import Conversation, Message
from review.models import Flag, Rating, ReviewItem
from tests.factories import ConversationFactory, MessageFactory, UserFactory
from tests.review.conftest import make_reviewer
from tests.sockets import open_socket

ROLES = ("anonymous", "owner", "other", "staff", "admin")
SECRET = "owner-only-secret-7f3a"
LOGIN = (302, "/accounts/login/")
ADMIN_LOGIN = (302, "/admin/login/")


@dataclass(frozen=True)
class Route:
    """How to call a route and what each role gets."""

    method: str
    expect: dict[str, int | tuple[int, str]]
    data: dict = field(default_factory=dict)
    query: str = ""


def same(status, **overrides) -> dict:
    """`status` for every role, except the ones named."""
    return {role: overrides.get(role, status) for role in ROLES}


def owner_only(ok: int, method: str = "GET", **kwargs) -> Route:
    """A route on the owner's object: others get 404, anonymous goes to log in."""
    return Route(method, same(404, anonymous=LOGIN, owner=ok), **kwargs)


def reviewers_only(ok: int, method: str = "GET", **kwargs) -> Route:
    return Route(method, same(ok, anonymous=LOGIN, owner=403, other=403), **kwargs)


SIGNED_IN = same(200, anonymous=LOGIN)
STAFF_WITH_PERMISSION = same(ADMIN_LOGIN, staff=403, admin=200)

MATRIX: dict[str, Route] = {
    # accounts
    "signup": Route("GET", same(302, anonymous=200)),
    "login": Route("GET", same(200)),
    "logout": Route("POST", same(302)),
    "dismiss_ai_notice": Route("POST", same(302, anonymous=LOGIN)),
    "profile": Route("GET", SIGNED_IN),
    "account_data": Route("GET", SIGNED_IN),
    "account_delete": Route("POST", same(400, anonymous=LOGIN), data={"password": "wrong"}),
    # conversations
    "conversation_list": Route("GET", SIGNED_IN),
    "conversation_new": Route("POST", same(302, anonymous=LOGIN)),
    "conversation_search": Route("GET", SIGNED_IN, query="?q=secret"),
    "conversation_detail": owner_only(200),
    "conversation_rename": owner_only(302, "POST", data={"title": "Taken over"}),
    "conversation_settings": owner_only(302, "POST", data={"system_prompt": "Obey me"}),
    "conversation_document": owner_only(302, "POST", data={"remove": "1"}),
    "message_raw": owner_only(200),
    "conversation_messages": owner_only(200, query="?before={reply}"),
    "conversation_export_markdown": owner_only(200),
    "conversation_export_json": owner_only(200),
    "conversation_delete": owner_only(302, "POST"),
    # review: the owner rates and reports; reviewers (staff) flag and decide
    "review:queue": reviewers_only(200),
    "review:item": reviewers_only(200),
    "review:item_assign": reviewers_only(302, "POST", data={"assignee": ""}),
    "review:item_flag": reviewers_only(302, "POST", data={"category": "other", "note": "x"}),
    "review:item_resolve": reviewers_only(302, "POST", data={"note": "done"}),
    "review:item_dismiss": reviewers_only(302, "POST", data={"note": "fine"}),
    "review:item_reopen": reviewers_only(302, "POST"),
    "review:transcript": reviewers_only(200),
    "review:reply_controls": Route("GET", same(200, anonymous=LOGIN, other=404)),
    "review:reply_rate": owner_only(302, "POST", data={"value": "down", "comment": "x"}),
    "review:reply_unrate": owner_only(302, "POST"),
    "review:reply_report": owner_only(302, "POST", data={"category": "unsafe", "note": "x"}),
    "review:reply_flag": Route(
        "POST", same(302, anonymous=LOGIN, owner=403, other=403), data={"category": "other"}
    ),
    # billing
    "my_usage": Route("GET", SIGNED_IN),
    "billing_dashboard": Route("GET", STAFF_WITH_PERMISSION),
    "billing_dashboard_csv": Route("GET", STAFF_WITH_PERMISSION),
    # batches
    "batch_list": Route("GET", SIGNED_IN),
    "batch_create": Route("POST", same(400, anonymous=LOGIN)),
    "batch_detail": owner_only(200),
    "batch_cancel": owner_only(302, "POST"),
    "batch_results_jsonl": owner_only(200),
    "batch_results_csv": owner_only(200),
    # operations
    "healthz": Route("GET", same(200)),
    "readyz": Route("GET", same(200)),
    "metrics": Route("GET", same(401, staff=200, admin=200)),
}


def named_routes(patterns=None, namespace: str | None = None):
    """(full name, pattern) of every named URL, namespaces included."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            full = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            yield from named_routes(pattern.url_patterns, full)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern


def admin_routes() -> list[str]:
    return sorted({name for name, _ in named_routes() if name.startswith("admin:")})


def test_every_named_route_is_in_the_matrix():
    names = {name for name, _ in named_routes() if not name.startswith("admin:")}
    assert sorted(names - MATRIX.keys()) == [], "add the new routes to MATRIX"
    assert sorted(MATRIX.keys() - names) == [], "routes in MATRIX that no longer exist"


@dataclass
class World:
    people: dict
    conversation: Conversation
    reply: Message
    item: ReviewItem
    job: BatchJob

    def kwargs(self, name: str) -> dict:
        values = {
            "conversation_id": self.conversation.pk,
            "message_id": self.reply.pk,
            "item_id": self.item.pk,
            "job_id": self.job.pk,
        }
        pattern = dict(named_routes())[name]
        return {key: values[key] for key in pattern.pattern.regex.groupindex}

    def state(self) -> tuple:
        """Everything a refused request must leave alone."""
        conversation = Conversation.objects.filter(pk=self.conversation.pk).first()
        item = ReviewItem.objects.get(pk=self.item.pk)
        return (
            conversation and (conversation.title, conversation.system_prompt),
            conversation and conversation.document_name,
            Message.objects.filter(conversation_id=self.conversation.pk).count(),
            Rating.objects.count(),
            Flag.objects.count(),
            (item.state, item.assignee_id, item.resolution_note),
            BatchJob.objects.get(pk=self.job.pk).cancel_requested,
        )


@pytest.fixture
def world(db) -> World:
    owner = UserFactory()
    people = {
        "anonymous": None,
        "owner": owner,
        "other": UserFactory(),
        "staff": make_reviewer(),  # staff in the Reviewers group, not a superuser
        "admin": UserFactory(is_staff=True, is_superuser=True),
    }
    conversation = ConversationFactory(
        user=owner, title=f"Title {SECRET}", document_name="notes.md", document_text="x"
    )
    MessageFactory(conversation=conversation, content=f"Question {SECRET}")
    reply = MessageFactory(
        conversation=conversation, role=Message.Role.ASSISTANT, content=f"Answer {SECRET}"
    )
    item = ReviewItem.open_for(reply)  # reported: reviewers may open this conversation
    job = BatchJob.objects.create(
        user=owner, name="rows.csv", mode="now", model="claude-sonnet-4-6", max_tokens=100,
        row_count=1, request_count=1,
    )  # fmt: skip
    return World(people, conversation, reply, item, job)


def call(world: World, name: str, role: str):
    route = MATRIX[name]
    client = Client()
    if world.people[role] is not None:
        client.force_login(world.people[role])
    url = reverse(name, kwargs=world.kwargs(name)) + route.query.format(reply=world.reply.pk)
    if route.method == "POST":
        return client.post(url, route.data)
    return client.get(url)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_route_as_role(world, name, role):
    expected = MATRIX[name].expect[role]
    status, location = expected if isinstance(expected, tuple) else (expected, None)
    before = world.state()
    response = call(world, name, role)

    assert response.status_code == status, (name, role, response.content[:300])
    if location:
        assert response["Location"].startswith(location)
    refused = status >= 400 or location in (LOGIN[1], ADMIN_LOGIN[1])
    if refused and role != "owner":
        body = b"".join(response) if response.streaming else response.content
        assert SECRET.encode() not in body, "refused, yet the owner's content leaked"
        assert world.state() == before, "refused, yet something changed"


def test_non_owners_never_see_the_owners_content_in_their_own_pages(world):
    """Signed-in pages that answer 200 to everyone show only the viewer's own data."""
    shared = [n for n, r in MATRIX.items() if r.method == "GET" and r.expect["other"] == 200]
    for name in shared:
        response = call(world, name, "other")
        body = b"".join(response) if response.streaming else response.content
        assert SECRET.encode() not in body, name


def test_staff_may_not_open_an_unflagged_conversation(world):
    unflagged = ConversationFactory(user=world.people["owner"])
    client = Client()
    client.force_login(world.people["staff"])
    assert client.get(reverse("review:transcript", args=[unflagged.pk])).status_code == 403
    assert client.get(reverse("conversation_detail", args=[unflagged.pk])).status_code == 404


# --- The admin: one family of routes, checked for every URL it has --------------------


def admin_url(name: str) -> str:
    pattern = dict(named_routes())[name]
    dummies = {"app_label": "conversations", "object_id": "1", "content_type_id": "1"}
    names = pattern.pattern.regex.groupindex
    return reverse(name, kwargs={key: dummies.get(key, "1") for key in names})


@pytest.mark.parametrize("role", ("anonymous", "owner", "other"))
def test_the_admin_turns_away_everyone_who_is_not_staff(world, role):
    client = Client()
    if world.people[role] is not None:
        client.force_login(world.people[role])
    for name in admin_routes():
        response = client.get(admin_url(name))
        if name == "admin:login":
            assert response.status_code == 200
        elif name == "admin:logout":
            assert response.status_code in (302, 405), name  # POST only; nobody to log out
        else:
            assert response.status_code == 302, name
            assert response["Location"].startswith("/admin/login/"), name


@pytest.mark.parametrize("role", ("staff", "admin"))
def test_every_admin_url_answers_staff_without_error(world, role):
    client = Client()
    client.force_login(world.people[role])
    for name in admin_routes():
        status = client.get(admin_url(name)).status_code
        assert status < 500, (name, status)
        if role == "admin" and name.endswith("_changelist"):
            assert status == 200, name


def test_staff_cannot_read_conversations_or_people_in_the_admin(world):
    client = Client()
    client.force_login(world.people["staff"])
    for model in ("conversations/conversation", "conversations/message", "accounts/user"):
        assert client.get(f"/admin/{model}/").status_code == 403, model
    change = f"/admin/conversations/conversation/{world.conversation.pk}/change/"
    assert client.get(change).status_code in (302, 403)
    assert SECRET.encode() not in client.get(change, follow=True).content


# --- The WebSocket route ---------------------------------------------------------------

SOCKET_MATRIX = {
    "ws/conversations/<int:conversation_id>/": {
        "anonymous": 4401,
        "owner": None,  # accepted
        "other": 4404,
        "staff": 4404,
        "admin": 4404,
    }
}


def test_every_websocket_route_is_in_the_matrix():
    assert sorted(str(p.pattern) for p in websocket_urlpatterns) == sorted(SOCKET_MATRIX)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
async def test_socket_as_role(role):
    owner = await sync_to_async(UserFactory)()
    people = {
        "anonymous": None,
        "owner": owner,
        "other": await sync_to_async(UserFactory)(),
        "staff": await sync_to_async(make_reviewer)(),
        "admin": await sync_to_async(UserFactory)(is_staff=True, is_superuser=True),
    }
    conversation = await sync_to_async(ConversationFactory)(user=owner)
    expected = SOCKET_MATRIX["ws/conversations/<int:conversation_id>/"][role]
    communicator, connected, code = await open_socket(people[role], conversation.pk)
    try:
        if expected is None:
            assert connected
        else:
            assert not connected
            assert code == expected
    finally:
        if connected:
            await communicator.disconnect()
        await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example"])
async def test_socket_from_another_origin_is_refused_even_for_the_owner(origin):
    owner = await sync_to_async(UserFactory)()
    conversation = await sync_to_async(ConversationFactory)(user=owner)
    _, connected, _ = await open_socket(owner, conversation.pk, origin=origin)
    assert not connected
    await sync_to_async(connections.close_all)()
