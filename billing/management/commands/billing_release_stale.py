from django.core.management.base import BaseCommand

from billing.budgets import release_stale_reservations


class Command(BaseCommand):
    help = "Release budget holds whose call never settled (its process died); run it hourly."

    def handle(self, *args, **options):
        count = release_stale_reservations()
        self.stdout.write(f"Released {count} stale reservation(s).")
