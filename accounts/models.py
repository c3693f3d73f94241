"""The custom user model (in place from the first migration)."""

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who chats; staff review, superusers administer."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
