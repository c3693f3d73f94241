"""What a reply cost, from the billing ledger when that app is installed."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.core.exceptions import FieldError
from django.db.models import Count, Sum


def _ledger():
    try:
        return apps.get_model("billing", "LedgerEntry")
    except LookupError:  # billing is not installed
        return None


def reply_costs(message_ids: list[int]) -> dict[int, Decimal]:
    """Each reply's summed ledger cost (every call made for it: retries, continuations).

    A reply with no ledger rows, or with any unpriced row, is left out: its cost is unknown
    and is shown as "—", never as a partial sum.
    """
    ledger = _ledger()
    if ledger is None or not message_ids:
        return {}
    try:
        rows = (
            ledger.objects.filter(message_id__in=message_ids)
            .values("message_id")
            .annotate(total=Sum("cost"), calls=Count("pk"), priced=Count("cost"))
        )
        return {
            row["message_id"]: row["total"]
            for row in rows
            if row["total"] is not None and row["calls"] == row["priced"]
        }
    except FieldError:  # a ledger without message_id/cost: no cost rather than a guess
        return {}


def reply_cost(message_id: int) -> Decimal | None:
    """The reply's cost, or None when unknown."""
    return reply_costs([message_id]).get(message_id)
