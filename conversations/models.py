"""Conversations and their messages."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

ERROR_MESSAGES = {
    "rate_limited": "Claude is rate limiting us right now. Please try again in a minute.",
    "overloaded": "Claude is overloaded right now. Please try again shortly.",
    "timeout": "Claude took too long to answer. Please try again.",
    "connection": "Claude could not be reached. Please try again.",
    "server_error": "Claude had an internal error. Please try again.",
    "bad_request": "Claude could not accept this request.",
    "authentication": "The server's Claude API key is misconfigured. Tell an administrator.",
    "api_error": "Claude returned an error.",
    "unavailable": "Claude is unavailable right now; we stopped calling it for a moment. "
    "Please try again in a minute.",
    "internal": "Something went wrong on our side. Please try again.",
}


class ChatModelQuerySet(models.QuerySet["ChatModel"]):
    def enabled(self) -> ChatModelQuerySet:
        return self.filter(enabled=True).order_by("position", "model_id")


class ChatModel(models.Model):
    """A Claude model users may pick (an admin enables it; its prices live in billing)."""

    model_id = models.CharField(max_length=100, unique=True)
    label = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    objects = ChatModelQuerySet.as_manager()

    class Meta:
        ordering = ["position", "model_id"]

    def __str__(self) -> str:
        return self.label


class Preset(models.Model):
    """An admin-defined starting point: a system prompt, a model and a reply length."""

    name = models.CharField(max_length=100, unique=True)
    system_prompt = models.TextField(blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def for_user(self, user) -> ConversationQuerySet:
        """Conversations this user owns."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def recent(self) -> ConversationQuerySet:
        """Newest activity first."""
        return self.order_by("-updated_at", "-id")


class Conversation(models.Model):
    """One chat thread, owned by one user."""

    DEFAULT_TITLE = "New conversation"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, default=DEFAULT_TITLE)
    model = models.CharField(max_length=100, blank=True, default="")
    system_prompt = models.TextField(blank=True, default="")
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    preset = models.ForeignKey(Preset, null=True, blank=True, on_delete=models.SET_NULL)
    # An attached reference document, sent as a cached system block with every request.
    document_name = models.CharField(max_length=200, blank=True, default="")
    document_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The conversation manager's state (conversations.context), inspectable in the admin.
    token_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="Prompt token budget; empty: CONTEXT_TOKEN_BUDGET."
    )
    context_start_id = models.BigIntegerField(
        null=True, blank=True, help_text="The first message currently sent to Claude."
    )
    context_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt size of the latest request (exact once answered)."
    )
    prompt_overhead_tokens = models.PositiveIntegerField(null=True, blank=True)
    prompt_overhead_key = models.CharField(max_length=32, blank=True, default="")
    total_input_tokens = models.PositiveBigIntegerField(default=0)
    total_cache_write_tokens = models.PositiveBigIntegerField(default=0)
    total_cache_read_tokens = models.PositiveBigIntegerField(default=0)
    total_output_tokens = models.PositiveBigIntegerField(default=0)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "-updated_at"], name="conv_user_recent")]

    def __str__(self) -> str:
        return self.title

    def rename(self, title: str) -> None:
        """Give the conversation a new title (trimmed, never empty)."""
        title = " ".join(title.replace("\x00", "").split())[:200]  # Postgres refuses NUL
        if not title:
            raise ValueError("A title cannot be empty.")
        self.title = title
        self.save(update_fields=["title"])

    @property
    def effective_model(self) -> str:
        return self.model or settings.CLAUDE_MODEL

    @property
    def effective_max_tokens(self) -> int:
        return self.max_tokens or settings.CLAUDE_MAX_TOKENS

    def apply_preset(self, preset: Preset) -> None:
        """Start from a preset: its system prompt, model and reply length."""
        self.preset = preset
        self.system_prompt = preset.system_prompt
        self.model = preset.model or self.model
        self.max_tokens = preset.max_tokens or self.max_tokens

    def attach_document(self, name: str, text: str) -> None:
        self.document_name = name[:200]
        self.document_text = text

    @property
    def budget(self) -> int:
        return self.token_budget or settings.CONTEXT_TOKEN_BUDGET

    @property
    def context_percent(self) -> int:
        return min(100, round(100 * self.context_tokens / self.budget)) if self.budget else 0


def conversation_for_user(user, conversation_id: int | str) -> Conversation:
    """Return this user's conversation or raise Http404 (the one access path)."""
    try:
        return Conversation.objects.for_user(user).get(pk=int(conversation_id))
    except (Conversation.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such conversation.") from exc


class MessageQuerySet(models.QuerySet["Message"]):
    def chronological(self) -> MessageQuerySet:
        return self.order_by("id")


class Message(models.Model):
    """A user message or an assistant reply, with its status and usage."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"
        FAILED = "failed"

    # No index of its own: msg_conv_order (conversation, id) serves every lookup by
    # conversation. With both, the planner took the single-column one for a turn's context
    # read whenever its statistics put few messages in a conversation, then read and sorted
    # the whole conversation: 2 ms instead of 0.15 for a full context at 10,000 messages.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    # Share of the prompt when sent to Claude: exact from the API's usage, else an estimate.
    tokens = models.PositiveIntegerField(null=True, blank=True)
    tokens_exact = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    model = models.CharField(max_length=100, blank=True, default="")
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_creation_input_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_read_input_tokens = models.PositiveIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True, default="")
    error_kind = models.CharField(max_length=40, blank=True, default="")
    request_id = models.CharField(max_length=100, blank=True, default="")
    # For a reply: the first message that was in the context sent to Claude, and the
    # system prompt used (the conversation's may change later).
    context_start_id = models.BigIntegerField(null=True, blank=True)
    edited = models.BooleanField(default=False)
    # The process generating a streaming reply (to find replies orphaned by a crash).
    owner = models.CharField(max_length=100, blank=True, default="")
    system_prompt = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "id"], name="msg_conv_order"),
            models.Index(
                fields=["owner"],
                name="msg_streaming_owner",
                condition=Q(status="streaming"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["user", "assistant"]), name="msg_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["streaming", "complete", "stopped", "interrupted", "failed"]
                ),
                name="msg_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(role="assistant") | Q(status="complete"),
                name="msg_user_always_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"

    @property
    def is_streaming(self) -> bool:
        return self.status == self.Status.STREAMING

    def context_messages(self) -> MessageQuerySet:
        """The messages that were sent to Claude to write this reply."""
        earlier = Message.objects.filter(conversation_id=self.conversation_id, id__lt=self.pk)
        if self.context_start_id is not None:
            earlier = earlier.filter(id__gte=self.context_start_id)
        return earlier.chronological()

    @property
    def error_text(self) -> str:
        """What to tell the user about a reply that did not complete."""
        if self.status == self.Status.STOPPED:
            return "Stopped."
        if self.status == self.Status.INTERRUPTED and not self.error_kind:
            return "This reply was interrupted before it finished."
        if self.error_kind:
            return ERROR_MESSAGES.get(self.error_kind, ERROR_MESSAGES["internal"])
        return ""

    @property
    def dom_id(self) -> str:
        return f"message-{self.pk}"
