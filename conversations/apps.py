from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_delete

        from conversations.models import Conversation
        from conversations.turns import lock_for_deletion

        post_migrate.connect(_schedule_retention, sender=self)
        pre_delete.connect(lock_for_deletion, sender=Conversation)


def _schedule_retention(sender, plan=None, **kwargs) -> None:
    """Every deployment migrates: make sure the daily retention purge is queued."""
    from django.conf import settings

    if plan is None or settings.CHAT_RETENTION_DAYS <= 0:
        return  # a flush (tests), not a migrate; or retention is off
    from conversations.retention import schedule_daily_purge

    schedule_daily_purge()
