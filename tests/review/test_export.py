"""JSONL export of rated and flagged replies, from the command and from the admin."""

import datetime
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from review.feedback import flag_reply, rate_reply, report_reply
from review.models import AuditLog, Rating, ReviewItem
from tests.review.conftest import make_reply

pytestmark = pytest.mark.django_db

FIELDS = {
    "reply_id",
    "conversation_id",
    "created_at",
    "model",
    "status",
    "stop_reason",
    "system_prompt",
    "context",
    "context_message_ids",
    "reply",
    "usage",
    "cost",
    "labels",
}
LABELS = {"ratings", "flags", "categories", "state", "resolution_note"}


@pytest.fixture
def labelled(user, reviewer):
    rated = make_reply(user, text="Sydney.")
    rate_reply(user=user, reply=rated, value="down", comment="It is Canberra.")
    flagged = make_reply(user, text="**Bold** claim.", model="claude-opus-4-6")
    report_reply(user=user, reply=flagged, category="unsafe", note="scary")
    flag_reply(user=reviewer, reply=flagged, category="inaccurate", note="made up")
    flagged.review_item.resolve(by=reviewer, note="Added to evals")
    liked = make_reply(user, text="Canberra.")
    rate_reply(user=user, reply=liked, value="up")
    make_reply(user, text="Never labelled.")
    return {"rated": rated, "flagged": flagged, "liked": liked}


def parse(text: str) -> dict[int, dict]:
    lines = text.splitlines()
    records = [json.loads(line) for line in lines]  # every line parses on its own
    for record in records:
        assert set(record) == FIELDS
        assert set(record["labels"]) == LABELS
        assert set(record["usage"]) == {
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        }
    return {record["reply_id"]: record for record in records}


def check_round_trip(records: dict[int, dict], labelled) -> None:
    assert set(records) == {reply.pk for reply in labelled.values()}
    rated = records[labelled["rated"].pk]
    assert rated["reply"] == "Sydney."
    assert rated["model"] == "claude-sonnet-4-6"
    assert rated["system_prompt"] == "Be concise."
    assert rated["context"] == [{"role": "user", "content": "What is the capital?"}]
    assert rated["usage"]["input_tokens"] == 120
    assert rated["cost"] is None  # no billing ledger row for it
    assert rated["labels"]["ratings"][0] | {"updated_at": None} == {
        "value": "down",
        "comment": "It is Canberra.",
        "updated_at": None,
    }
    assert rated["labels"]["state"] == "open"
    flagged = records[labelled["flagged"].pk]
    assert flagged["reply"] == "**Bold** claim."
    assert flagged["model"] == "claude-opus-4-6"
    assert flagged["labels"]["categories"] == ["inaccurate", "unsafe"]
    assert [(f["source"], f["note"]) for f in flagged["labels"]["flags"]] == [
        ("report", "scary"),
        ("flag", "made up"),
    ]
    assert flagged["labels"]["state"] == "resolved"
    assert flagged["labels"]["resolution_note"] == "Added to evals"
    assert records[labelled["liked"].pk]["labels"]["state"] is None


def test_command_writes_a_jsonl_file_that_round_trips(tmp_path, labelled):
    out = tmp_path / "reviews.jsonl"
    call_command("export_reviews", "--output", str(out))
    check_round_trip(parse(out.read_text(encoding="utf-8")), labelled)
    row = AuditLog.objects.get()
    assert (row.view, row.actor, row.detail) == ("export_command", None, "3 replies")


def test_command_since_keeps_only_recent_labels(tmp_path, labelled):
    old = timezone.now() - datetime.timedelta(days=10)
    Rating.objects.filter(message=labelled["liked"]).update(updated_at=old)
    ReviewItem.objects.filter(message=labelled["rated"]).update(updated_at=old)
    Rating.objects.filter(message=labelled["rated"]).update(updated_at=old)
    out = tmp_path / "recent.jsonl"
    since = (timezone.localdate() - datetime.timedelta(days=2)).isoformat()
    call_command("export_reviews", "--output", str(out), "--since", since)
    assert set(parse(out.read_text())) == {labelled["flagged"].pk}


def test_command_refuses_a_bad_date(tmp_path):
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_reviews", "--output", str(tmp_path / "x"), "--since", "soon")


def test_admin_action_exports_selected_items(client, admin, labelled):
    client.force_login(admin)
    item = labelled["flagged"].review_item
    response = client.post(
        reverse("admin:review_reviewitem_changelist"),
        {"action": "export_jsonl", "_selected_action": [item.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    assert "attachment" in response["Content-Disposition"]
    records = parse(b"".join(response.streaming_content).decode())
    assert set(records) == {labelled["flagged"].pk}
    assert AuditLog.objects.get().view == "export_admin"


def test_admin_action_on_ratings(client, admin, labelled):
    client.force_login(admin)
    rating = Rating.objects.get(message=labelled["liked"])
    response = client.post(
        reverse("admin:review_rating_changelist"),
        {"action": "export_jsonl", "_selected_action": [rating.pk]},
    )
    records = parse(b"".join(response.streaming_content).decode())
    assert records[labelled["liked"].pk]["labels"]["ratings"][0]["value"] == "up"


def test_admin_export_all_round_trips(client, admin, labelled):
    client.force_login(admin)
    changelist = client.get(reverse("admin:review_reviewitem_changelist")).content.decode()
    export_url = reverse("admin:review_reviewitem_export")
    assert export_url in changelist
    response = client.get(export_url)
    check_round_trip(parse(b"".join(response.streaming_content).decode()), labelled)


def test_reviewers_cannot_export_from_the_admin(client, reviewer, labelled):
    client.force_login(reviewer)
    response = client.get(reverse("admin:review_reviewitem_export"))
    assert response.status_code == 403
    assert not AuditLog.objects.filter(view="export_admin").exists()
