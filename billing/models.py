"""Prices, the cost ledger, budgets with their reservations, and the dashboard's rollups."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.tokens import Tokens

MILLION = Decimal(1_000_000)
MICRODOLLAR = Decimal("0.000001")
BATCH_DISCOUNT = Decimal("0.5")
# "claude-haiku-4-5-20251001" is a dated snapshot of the alias "claude-haiku-4-5".
DATED_SNAPSHOT = re.compile(r"^(?P<alias>.+)-\d{8}$")


def utc_day(at: dt.datetime) -> dt.date:
    """The UTC calendar day of an aware datetime (budgets and rollups use UTC)."""
    return at.astimezone(dt.UTC).date()


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    """The first day of the month after this one."""
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def usd_field(**kwargs) -> models.DecimalField:
    """Money in USD, exact to the micro-dollar."""
    kwargs.setdefault("max_digits", 18)
    return models.DecimalField(decimal_places=6, **kwargs)


# --- Prices -------------------------------------------------------------------------------


class PriceQuerySet(models.QuerySet["Price"]):
    def in_force(self, model: str, on: dt.date) -> Price | None:
        """The newest price from on or before that day for this model (or its snapshot's alias)."""
        names = [model]
        if match := DATED_SNAPSHOT.match(model):
            names.append(match["alias"])
        for name in names:
            price = self.filter(model=name, effective_from__lte=on).order_by("-effective_from")
            if found := price.first():
                return found
        return None


class Price(models.Model):
    """List prices of one model, in USD per million tokens, from a date on."""

    model = models.CharField(
        max_length=100,
        help_text="Model id as sent to the API, e.g. claude-sonnet-4-6. A dated snapshot "
        "(claude-sonnet-4-6-20261001) uses its alias's price unless it has its own.",
    )
    effective_from = models.DateField(help_text="UTC day from which this price applies.")
    input_usd = usd_field(max_digits=12, validators=[MinValueValidator(0)])
    cache_write_5m_usd = usd_field(max_digits=12, validators=[MinValueValidator(0)])
    cache_write_1h_usd = usd_field(max_digits=12, validators=[MinValueValidator(0)])
    cache_read_usd = usd_field(max_digits=12, validators=[MinValueValidator(0)])
    output_usd = usd_field(max_digits=12, validators=[MinValueValidator(0)])
    note = models.CharField(max_length=200, blank=True, default="")

    objects = PriceQuerySet.as_manager()

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="price_model_day"),
            models.CheckConstraint(
                condition=Q(input_usd__gte=0)
                & Q(cache_write_5m_usd__gte=0)
                & Q(cache_write_1h_usd__gte=0)
                & Q(cache_read_usd__gte=0)
                & Q(output_usd__gte=0),
                name="price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from}"

    def _exact(self, tokens: Tokens, *, batch: bool) -> Decimal:
        total = (
            tokens.input * self.input_usd
            + tokens.cache_write_5m * self.cache_write_5m_usd
            + tokens.cache_write_1h * self.cache_write_1h_usd
            + tokens.cache_read * self.cache_read_usd
            + tokens.output * self.output_usd
        ) / MILLION
        return total * BATCH_DISCOUNT if batch else total

    def cost(self, tokens: Tokens, *, batch: bool = False) -> Decimal:
        """What these tokens cost, rounded once (half up) to the micro-dollar."""
        return self._exact(tokens, batch=batch).quantize(MICRODOLLAR, ROUND_HALF_UP)

    def cache_savings(self, tokens: Tokens, *, batch: bool = False) -> Decimal:
        """What the cache-read tokens would have cost at the input price, minus what they cost."""
        saved = tokens.cache_read * (self.input_usd - self.cache_read_usd) / MILLION
        if batch:
            saved *= BATCH_DISCOUNT
        return saved.quantize(MICRODOLLAR, ROUND_HALF_UP)

    def worst_case(
        self, *, prompt_tokens: int, max_tokens: int, batch: bool, cache_ttl: str | None
    ) -> Decimal:
        """The most a call can cost: the prompt at its dearest input rate, max_tokens of output."""
        prompt_rate = {
            None: self.input_usd,
            "5m": max(self.input_usd, self.cache_write_5m_usd),
            "1h": max(self.input_usd, self.cache_write_5m_usd, self.cache_write_1h_usd),
        }[cache_ttl]
        total = (max(prompt_tokens, 0) * prompt_rate + max(max_tokens, 0) * self.output_usd) / (
            MILLION
        )
        if batch:
            total *= BATCH_DISCOUNT
        return total.quantize(MICRODOLLAR, ROUND_UP)


# --- The ledger ---------------------------------------------------------------------------


class Purpose(models.TextChoices):
    CHAT = "chat"
    TITLE = "title"
    BATCH = "batch"
    BULK = "bulk"
    OTHER = "other"


class CallStatus(models.TextChoices):
    COMPLETE = "complete"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class LedgerEntry(models.Model):
    """One call to Claude: who, what for, which model, the tokens, what it cost, how it went.

    References to users, conversations and messages are not database constraints: a ledger
    row must never be lost or fail to be written because its conversation was deleted
    meanwhile; deleting one sets the reference to NULL and the numbers stay.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="ledger_entries",
    )
    conversation = models.ForeignKey(
        "conversations.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="ledger_entries",
    )
    message = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="ledger_entries",
    )
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    model = models.CharField(max_length=100)
    input_tokens = models.PositiveIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = usd_field(max_digits=14, null=True, blank=True, help_text="NULL when unpriced.")
    cache_savings = usd_field(max_digits=14, null=True, blank=True)
    priced = models.BooleanField()
    batch = models.BooleanField(default=False, help_text="Message Batches: 50% of every line.")
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=CallStatus.choices)
    error_kind = models.CharField(max_length=40, blank=True, default="")
    request_id = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, help_text="When the call started.")

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["-created_at"], name="ledger_recent"),
            models.Index(fields=["user", "-created_at"], name="ledger_user_recent"),
            models.Index(
                fields=["model", "-created_at"], condition=Q(priced=False), name="ledger_unpriced"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(priced=True, cost__isnull=False, cache_savings__isnull=False)
                | Q(priced=False, cost__isnull=True, cache_savings__isnull=True),
                name="ledger_priced_has_cost",
            ),
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="ledger_cost_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.purpose} #{self.pk}"

    @property
    def tokens(self) -> Tokens:
        return Tokens(
            input=self.input_tokens,
            cache_write_5m=self.cache_write_5m_tokens,
            cache_write_1h=self.cache_write_1h_tokens,
            cache_read=self.cache_read_tokens,
            output=self.output_tokens,
        )

    @property
    def is_error(self) -> bool:
        return bool(self.error_kind)


# --- Budgets and reservations -------------------------------------------------------------


class UserBudget(models.Model):
    """An administrator's override of one user's monthly budget."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget"
    )
    monthly_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="USD per UTC month. Empty or 0: unlimited. Delete the override to use "
        "the default (BUDGET_USER_MONTHLY_USD).",
    )
    note = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Budget of {self.user}"


class MonthCounter(models.Model):
    """Spend settled and worst cases reserved in one UTC month: the row a budget locks."""

    month = models.DateField(help_text="First day of the UTC month.")
    spent = usd_field(default=Decimal(0))
    reserved = usd_field(default=Decimal(0))

    class Meta:
        abstract = True

    @property
    def committed(self) -> Decimal:
        return self.spent + self.reserved


class UserMonth(MonthCounter):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="billing_months"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "month"], name="usermonth_user_month"),
            models.CheckConstraint(
                condition=Q(spent__gte=0) & Q(reserved__gte=0), name="usermonth_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.month:%Y-%m}"


class GlobalMonth(MonthCounter):
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month"], name="globalmonth_month"),
            models.CheckConstraint(
                condition=Q(spent__gte=0) & Q(reserved__gte=0), name="globalmonth_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"All users {self.month:%Y-%m}"


class Reservation(models.Model):
    """The worst case of one call in flight, held against its user's and the global month."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations"
    )
    month = models.DateField()
    amount = usd_field(max_digits=14)
    model = models.CharField(max_length=100)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    batch = models.BooleanField(default=False)
    priced = models.BooleanField()
    prompt_tokens = models.PositiveIntegerField()
    max_tokens = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        help_text="After this the hold is released by release_stale_reservations."
    )

    # Not stored: set by reserve() for the caller to show (empty below 80% of the budget).
    warning: str = ""

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="reservation_expiry")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="reservation_not_negative")
        ]

    def __str__(self) -> str:
        return f"${self.amount} for {self.user} ({self.model})"


# --- Rollups (maintained by settle(); rebuild_rollups() recomputes them from the ledger) ---


class Grain(models.TextChoices):
    DAY = "d"
    MONTH = "m"


class Totals(models.Model):
    """Sums over ledger rows."""

    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    unpriced_calls = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost = usd_field(default=Decimal(0))
    cache_savings = usd_field(default=Decimal(0))

    class Meta:
        abstract = True


TOTAL_FIELDS = [
    "calls", "errors", "unpriced_calls", "input_tokens", "cache_write_5m_tokens",
    "cache_write_1h_tokens", "cache_read_tokens", "output_tokens", "cost", "cache_savings",
]  # fmt: skip


class UserSpend(Totals):
    """A user's calls to one model in one UTC day or month."""

    grain = models.CharField(max_length=1, choices=Grain.choices)
    period = models.DateField(help_text="The day, or the first day of the month.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_constraint=False, related_name="+"
    )
    model = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "period", "user", "model"], name="userspend_key"
            )
        ]
        indexes = [models.Index(fields=["user", "grain", "period"], name="userspend_user")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.model} {self.grain}{self.period}"


class ConversationSpend(Totals):
    """The calls made for one conversation in one UTC day or month."""

    grain = models.CharField(max_length=1, choices=Grain.choices)
    period = models.DateField()
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "period", "conversation"], name="conversationspend_key"
            )
        ]
        indexes = [
            models.Index(fields=["user", "grain", "period"], name="conversationspend_user"),
            models.Index(fields=["grain", "period", "-cost"], name="conversationspend_top"),
        ]

    def __str__(self) -> str:
        return f"conversation {self.conversation_id} {self.grain}{self.period}"


class SiteDaily(Totals):
    """All users' calls to one model for one purpose in one UTC day."""

    day = models.DateField()
    model = models.CharField(max_length=100)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)

    class Meta:
        verbose_name_plural = "site daily totals"
        constraints = [
            models.UniqueConstraint(fields=["day", "model", "purpose"], name="sitedaily_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model} {self.purpose}"


# Upper bounds (ms) of the latency histogram's buckets; the last one catches the rest.
LATENCY_BUCKETS_MS = [
    100, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500, 10_000,
    15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 300_000, 2_147_483_647,
]  # fmt: skip


def latency_bucket(ms: int) -> int:
    """The upper bound of the histogram bucket holding this latency."""
    for bound in LATENCY_BUCKETS_MS:
        if ms <= bound:
            return bound
    return LATENCY_BUCKETS_MS[-1]


class LatencyBucket(models.Model):
    """How many calls of one UTC day had a time to first token (or duration) in one bucket."""

    class Metric(models.TextChoices):
        TTFT = "ttft"
        DURATION = "duration"

    day = models.DateField()
    metric = models.CharField(max_length=8, choices=Metric.choices)
    le_ms = models.PositiveIntegerField(help_text="Upper bound of the bucket, in ms.")
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "metric", "le_ms"], name="latencybucket_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric} <= {self.le_ms} ms"
