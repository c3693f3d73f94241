"""A reply's cost comes from the billing ledger; unknown or partly unpriced shows "—"."""

import json
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from review.costs import reply_cost
from review.feedback import report_reply
from tests.review.conftest import make_reply

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not apps.is_installed("billing"), reason="billing app not installed"),
]


def ledger_row(reply, cost):
    entry = apps.get_model("billing", "LedgerEntry")
    return entry.objects.create(
        user=reply.conversation.user,
        conversation=reply.conversation,
        message=reply,
        purpose="chat",
        model=reply.model,
        priced=cost is not None,
        cost=cost,
        cache_savings=Decimal("0") if cost is not None else None,
        status="complete",
    )


def test_cost_is_the_sum_of_the_replys_calls(client, user, reviewer):
    reply = make_reply(user)
    ledger_row(reply, Decimal("0.001000"))
    ledger_row(reply, Decimal("0.000234"))  # e.g. a continuation of the same reply
    report_reply(user=user, reply=reply, category="other")
    client.force_login(reviewer)
    page = client.get(reverse("review:item", args=[reply.review_item.pk])).content.decode()
    assert '<td id="reply-cost">$0.001234</td>' in page


def test_a_partly_unpriced_reply_has_no_cost(user):
    reply = make_reply(user)
    ledger_row(reply, Decimal("0.001000"))
    ledger_row(reply, None)
    assert reply_cost(reply.pk) is None


def test_export_carries_the_cost(tmp_path, user):
    reply = make_reply(user)
    ledger_row(reply, Decimal("0.020000"))
    report_reply(user=user, reply=reply, category="other")
    out = tmp_path / "x.jsonl"
    call_command("export_reviews", "--output", str(out))
    assert json.loads(out.read_text())["cost"] == "0.020000"
