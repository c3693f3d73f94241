"""What a reply cost, from the billing ledger when that app is installed."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.core.exceptions import FieldError
from django.db.models import Sum


def _ledger():
    try:
        return apps.get_model("billing", "LedgerEntry")
    except LookupError:  # billing is not installed (yet)
        return None


def reply_costs(message_ids: list[int]) -> dict[int, Decimal]:
    """The summed ledger cost of each reply that has ledger rows; missing ids are unknown."""
    ledger = _ledger()
    if ledger is None or not message_ids:
        return {}
    try:
        rows = (
            ledger.objects.filter(message_id__in=message_ids)
            .values("message_id")
            .annotate(total=Sum("cost"))
        )
        return {row["message_id"]: row["total"] for row in rows if row["total"] is not None}
    except FieldError:  # a ledger without message_id/cost: show no cost rather than a guess
        return {}


def reply_cost(message_id: int) -> Decimal | None:
    """The reply's cost, or None when unknown (shown as "—")."""
    return reply_costs([message_id]).get(message_id)
