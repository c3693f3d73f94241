"""Export rated and flagged replies as JSONL for evaluation sets."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from review.export import exported_replies, write_jsonl
from review.models import AuditLog


def parse_since(value: str) -> datetime.datetime:
    """A date (midnight, local time zone) or an ISO date-time."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        moment = datetime.datetime.combine(day, datetime.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Write every rated or flagged reply (context, reply, model, labels) as JSONL."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", required=True, help="File to write ('-' for stdout).")
        parser.add_argument(
            "--since", help="Only replies labelled on or after this date (YYYY-MM-DD)."
        )

    def handle(self, *args, output: str, since: str | None, **options) -> None:
        try:
            moment = parse_since(since) if since else None
        except ValueError:
            raise CommandError(f"--since: {since!r} is not a date (YYYY-MM-DD).") from None
        replies = exported_replies(moment)
        if output == "-":
            count = write_jsonl(self.stdout, replies)
        else:
            with open(output, "w", encoding="utf-8") as stream:
                count = write_jsonl(stream, replies)
        AuditLog.record(
            actor=None,
            view=AuditLog.View.EXPORT_COMMAND,
            path=output,
            detail=f"{count} replies" + (f" since {since}" if since else ""),
        )
        if output != "-":
            self.stderr.write(f"Wrote {count} replies to {output}.")
