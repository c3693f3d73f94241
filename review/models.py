"""Ratings, reports and flags on replies, the review queue, and the staff audit log."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from conversations.models import Conversation, Message


class Rating(models.Model):
    """One user's thumbs up or down on a reply, with an optional comment."""

    class Value(models.TextChoices):
        UP = "up", "Thumbs up"
        DOWN = "down", "Thumbs down"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="ratings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings"
    )
    value = models.CharField(max_length=4, choices=Value.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="rating_one_per_user"),
            models.CheckConstraint(condition=Q(value__in=["up", "down"]), name="rating_value"),
        ]

    def __str__(self) -> str:
        return f"{self.get_value_display()} on reply #{self.message_id}"


class ReviewItemQuerySet(models.QuerySet["ReviewItem"]):
    def active(self) -> ReviewItemQuerySet:
        """Items still waiting for a decision."""
        return self.filter(state__in=ReviewItem.ACTIVE_STATES)

    def holding(self) -> ReviewItemQuerySet:
        """Items that keep their conversation out of the retention purge."""
        return self.exclude(state=ReviewItem.State.DISMISSED)

    def in_state(self, state: str) -> ReviewItemQuerySet:
        return self.filter(state=state)

    def with_category(self, category: str) -> ReviewItemQuerySet:
        return self.filter(pk__in=Flag.objects.filter(category=category).values("item_id"))

    def for_model(self, model: str) -> ReviewItemQuerySet:
        return self.filter(message__model=model)

    def created_between(
        self, since: datetime.date | None, until: datetime.date | None
    ) -> ReviewItemQuerySet:
        items = self
        if since:
            items = items.filter(created_at__date__gte=since)
        if until:
            items = items.filter(created_at__date__lte=until)
        return items

    def newest_first(self) -> ReviewItemQuerySet:
        return self.order_by("-created_at", "-id")


class ReviewItem(models.Model):
    """A reply in the review queue: entered by a report, a staff flag or a thumbs down."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        IN_REVIEW = "in_review", "In review"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    ACTIVE_STATES = (State.OPEN, State.IN_REVIEW)

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="review_item")
    # The reply's conversation, kept here so holds and staff access are one indexed lookup.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="review_items"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_reviews",
    )
    resolution_note = models.TextField(blank=True, default="")
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ReviewItemQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["state", "-created_at"], name="review_item_state")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["open", "in_review", "resolved", "dismissed"]),
                name="review_item_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["open", "in_review"]) | Q(closed_at__isnull=False),
                name="review_item_closed_has_time",
            ),
        ]
        permissions = [
            ("review_replies", "Can use the review queue, flag replies, open their transcripts"),
            ("export_reviews", "Can export rated and flagged replies as JSONL"),
        ]

    def __str__(self) -> str:
        return f"Review of reply #{self.message_id} ({self.get_state_display()})"

    @classmethod
    def open_for(cls, message: Message) -> ReviewItem:
        """The reply's queue item, created or reopened."""
        item, created = cls.objects.get_or_create(
            message=message, defaults={"conversation_id": message.conversation_id}
        )
        if not created and not item.is_active:
            item.reopen()
        return item

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    def _save(self, *fields: str) -> None:
        self.updated_at = timezone.now()
        self.save(update_fields=[*fields, "updated_at"])

    def assign(self, reviewer) -> None:
        """Give the item to a reviewer (or to nobody); an open item goes into review."""
        if not self.is_active:
            raise ValueError("Reopen the item before assigning it.")
        self.assignee = reviewer
        if reviewer is not None:
            self.state = self.State.IN_REVIEW
        elif self.state == self.State.IN_REVIEW:
            self.state = self.State.OPEN
        self._save("assignee", "state")

    def _close(self, state: str, *, by, note: str) -> None:
        note = note.strip()
        if not note:
            raise ValueError("Write a note saying why.")
        if not self.is_active:
            raise ValueError("This item is already closed.")
        self.state = state
        self.resolution_note = note
        self.closed_by = by
        self.closed_at = timezone.now()
        self._save("state", "resolution_note", "closed_by", "closed_at")

    def resolve(self, *, by, note: str) -> None:
        """Close the item as dealt with."""
        self._close(self.State.RESOLVED, by=by, note=note)

    def dismiss(self, *, by, note: str) -> None:
        """Close the item as not a problem; its conversation is no longer held."""
        self._close(self.State.DISMISSED, by=by, note=note)

    def reopen(self) -> None:
        """Put a closed item back in the queue (its last note is kept until the next close)."""
        if self.is_active:
            return
        self.state = self.State.IN_REVIEW if self.assignee_id else self.State.OPEN
        self.closed_at = None
        self._save("state", "closed_at")

    def is_withdrawable(self) -> bool:
        """True when nothing but a thumbs down put the item here and nobody has touched it."""
        return (
            self.state == self.State.OPEN
            and self.assignee_id is None
            and not self.resolution_note
            and not self.flags.exists()
        )


class Flag(models.Model):
    """A staff flag or a user's report on a reply, with a category and a note."""

    class Source(models.TextChoices):
        REPORT = "report", "User report"
        STAFF = "flag", "Staff flag"

    class Category(models.TextChoices):
        INACCURATE = "inaccurate", "Inaccurate"
        UNSAFE = "unsafe", "Unsafe"
        OFF_POLICY = "off_policy", "Off-policy"
        FORMATTING = "formatting", "Formatting"
        OTHER = "other", "Other"

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="flags")
    source = models.CharField(max_length=6, choices=Source.choices)
    category = models.CharField(max_length=12, choices=Category.choices)
    note = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["category", "item"], name="flag_category")]
        constraints = [
            models.CheckConstraint(condition=Q(source__in=["report", "flag"]), name="flag_source"),
            models.CheckConstraint(
                condition=Q(
                    category__in=["inaccurate", "unsafe", "off_policy", "formatting", "other"]
                ),
                name="flag_category_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()}: {self.get_category_display()}"


class AuditLog(models.Model):
    """Staff opened someone's transcript (or exported replies): who, what, when, where."""

    class View(models.TextChoices):
        REVIEW_ITEM = "review_item", "Review item"
        TRANSCRIPT = "transcript", "Full transcript"
        EXPORT_ADMIN = "export_admin", "Export from the admin"
        EXPORT_COMMAND = "export_command", "Export by command"

    # Plain ids, not foreign keys: the log outlives the conversations and people it names.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150)
    view = models.CharField(max_length=20, choices=View.choices)
    conversation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    owner_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True, default="")
    detail = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}"
        return f"{self.actor_username} · {self.get_view_display()} · {when}"

    @classmethod
    def record(
        cls,
        *,
        actor,
        view: str,
        conversation: Conversation | None = None,
        message: Message | None = None,
        path: str = "",
        detail: str = "",
    ) -> AuditLog:
        """Write one row; the actor is None for a command run from a shell."""
        return cls.objects.create(
            actor=actor,
            actor_username=actor.get_username() if actor is not None else "(command line)",
            view=view,
            conversation_id=conversation.pk if conversation else None,
            owner_id=conversation.user_id if conversation else None,
            message_id=message.pk if message else None,
            path=path[:500],
            detail=detail[:200],
        )
