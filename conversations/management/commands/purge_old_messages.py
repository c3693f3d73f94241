"""Blank message content older than CHAT_RETENTION_DAYS (daily, from cron or the worker)."""

import json

from django.core.management.base import BaseCommand

from conversations.retention import purge_old_messages, schedule_daily_purge


class Command(BaseCommand):
    help = (
        "Blank the text of messages older than CHAT_RETENTION_DAYS, the titles and documents "
        "of conversations idle that long and the text of batch jobs finished that long ago "
        "(token counts and the cost ledger stay; conversations on hold for review are "
        "skipped). Run daily."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="Override CHAT_RETENTION_DAYS for this run."
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Only queue the daily purge task for the db_worker (if none is waiting).",
        )

    def handle(self, *args, days: int | None = None, schedule: bool = False, **options) -> None:
        if schedule:
            queued = schedule_daily_purge()
            self.stdout.write("Queued the daily purge." if queued else "Already queued.")
            return
        report = purge_old_messages(days=days)
        self.stdout.write(json.dumps(report.as_dict()))
