"""The custom user model (in place from the first migration)."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who chats; staff review, superusers administer."""

    ai_notice_dismissed = models.BooleanField(
        default=False, help_text="Has dismissed the notice that replies are AI-generated."
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def dismiss_ai_notice(self) -> None:
        """Stop showing the AI disclosure notice to this user."""
        self.ai_notice_dismissed = True
        self.save(update_fields=["ai_notice_dismissed"])
