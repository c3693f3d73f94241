from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing: prices, ledger and budgets"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_schedule_stale_release, sender=self)


def _schedule_stale_release(sender, plan=None, **kwargs) -> None:
    """Every deployment migrates: make sure the release of stale holds is queued."""
    if plan is None:
        return  # a flush (tests), not a migrate
    from billing.upkeep import schedule_stale_release

    schedule_stale_release()
