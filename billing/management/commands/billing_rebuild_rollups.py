from django.core.management.base import BaseCommand

from billing.rollups import rebuild_rollups


class Command(BaseCommand):
    help = "Recompute the dashboard's rollups and each month's spend from the cost ledger."

    def add_arguments(self, parser):
        parser.add_argument(
            "--keep-spent", action="store_true", help="Leave the budgets' monthly spend alone."
        )

    def handle(self, *args, keep_spent: bool = False, **options):
        rebuild_rollups(spent=not keep_spent)
        self.stdout.write("Rollups rebuilt from the ledger.")
