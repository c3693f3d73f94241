"""Batch jobs: an uploaded file of prompts, its unique requests, the provider batches that
carry them, and one stored result per request (never two: see JobResult)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

WORKER_LATE = dt.timedelta(seconds=30)


def usd_field(**kwargs) -> models.DecimalField:
    """Money in USD, exact to the micro-dollar (as billing's ledger)."""
    return models.DecimalField(max_digits=14, decimal_places=6, **kwargs)


class BatchJobQuerySet(models.QuerySet["BatchJob"]):
    def for_user(self, user) -> BatchJobQuerySet:
        """Jobs this user owns."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def recent(self) -> BatchJobQuerySet:
        return self.order_by("-created_at", "-id")


class BatchJob(models.Model):
    """One uploaded file of prompts sent to Claude with one model, system prompt and length."""

    class Mode(models.TextChoices):
        BATCH = "batch", "Message Batches (50% cheaper, within 24 h)"
        NOW = "now", "Now (concurrent calls, full price)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        CANCELING = "canceling"
        COMPLETED = "completed"
        CANCELED = "canceled"
        FAILED = "failed"

    FINISHED = (Status.COMPLETED, Status.CANCELED, Status.FAILED)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batch_jobs"
    )
    name = models.CharField(max_length=200, help_text="The uploaded file's name.")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    model = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True, default="")
    max_tokens = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    row_count = models.PositiveIntegerField(help_text="Rows in the file.")
    request_count = models.PositiveIntegerField(help_text="Distinct requests sent.")
    # billing.Reservation holding the job's remaining worst case. Not a foreign key: billing
    # deletes reservations on its hot path and must not cascade into this table.
    reservation_id = models.BigIntegerField(null=True, blank=True)
    reserved_usd = usd_field(default=0, help_text="The worst case held at submission.")
    # Scheduling (batches/worker.py): the one live tick, and the lease of the run at work.
    tick_token = models.UUIDField(null=True, blank=True)
    lease_owner = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    poll_interval = models.FloatField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BatchJobQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="batchjob_user_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=["batch", "now"]), name="batchjob_mode_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_mode_display()}) #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_batch(self) -> bool:
        return self.mode == self.Mode.BATCH

    @property
    def waiting_for_worker(self) -> bool:
        """Queued for a while: no background worker seems to be running."""
        return self.status == self.Status.QUEUED and timezone.now() - self.created_at > WORKER_LATE

    @property
    def can_cancel(self) -> bool:
        return not self.is_finished and not self.cancel_requested


def job_for_user(user, job_id: int | str) -> BatchJob:
    """Return this user's batch job or raise Http404 (the one access path)."""
    try:
        return BatchJob.objects.for_user(user).get(pk=int(job_id))
    except (BatchJob.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such batch job.") from exc


class ProviderBatch(models.Model):
    """One Message Batch at the API: up to BATCH_SPLIT_SIZE of a job's requests."""

    class State(models.TextChoices):
        PENDING = "pending"  # not sent yet
        SUBMITTING = "submitting"  # being sent: the API may or may not have it (reconciled)
        IN_PROGRESS = "in_progress"
        CANCELING = "canceling"
        ENDED = "ended"  # results can be downloaded
        INGESTED = "ingested", "Results stored"  # every request of it has its result
        FAILED = "failed"  # the API refused it: its requests are errored

    DONE = (State.INGESTED, State.FAILED)

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="provider_batches")
    index = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    provider_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    submit_started_at = models.DateTimeField(null=True, blank=True)
    processing_status = models.CharField(max_length=20, blank=True, default="")
    request_counts = models.JSONField(default=dict, blank=True)
    size = models.PositiveIntegerField()
    error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="providerbatch_job_index")
        ]

    def __str__(self) -> str:
        return f"Batch {self.index + 1} of job #{self.job_id} ({self.state})"


class JobRequest(models.Model):
    """One distinct request of a job (identical rows share it and are sent once)."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="requests")
    custom_id = models.CharField(max_length=64, help_text="The id sent to the API.")
    params_hash = models.CharField(max_length=64)
    params = models.JSONField(help_text="The Messages API parameters, model included.")
    prompt_tokens_bound = models.PositiveIntegerField(
        help_text="An upper bound of the prompt's tokens (UTF-8 bytes + overheads)."
    )
    max_tokens = models.PositiveIntegerField()
    provider_batch = models.ForeignKey(
        ProviderBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "custom_id"], name="jobrequest_custom_id"),
            models.UniqueConstraint(fields=["job", "params_hash"], name="jobrequest_params"),
        ]

    def __str__(self) -> str:
        return self.custom_id


class JobRow(models.Model):
    """One row (line) of the uploaded file and the request that answers it."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="rows")
    line = models.PositiveIntegerField(help_text="Line number in the file.")
    custom_id = models.CharField(max_length=64, help_text="The row's id in the downloads.")
    request = models.ForeignKey(JobRequest, on_delete=models.CASCADE, related_name="rows")

    class Meta:
        ordering = ["job", "line"]
        constraints = [
            models.UniqueConstraint(fields=["job", "line"], name="jobrow_line"),
            models.UniqueConstraint(fields=["job", "custom_id"], name="jobrow_custom_id"),
        ]

    def __str__(self) -> str:
        return f"{self.custom_id} (line {self.line})"


class JobResult(models.Model):
    """What came back for one request. Stored at most once (unique job + custom_id), in the
    same transaction as its ledger row, so a re-run after a crash can neither duplicate nor
    lose a result or a charge."""

    class Kind(models.TextChoices):
        SUCCEEDED = "succeeded"
        ERRORED = "errored"
        CANCELED = "canceled"
        EXPIRED = "expired"

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="results")
    request = models.OneToOneField(JobRequest, on_delete=models.CASCADE, related_name="result")
    custom_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.TextField(blank=True, default="")
    stop_reason = models.CharField(max_length=30, blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    usage = models.JSONField(default=dict, blank=True)
    cost = usd_field(null=True, blank=True, help_text="NULL: not billed or unpriced.")
    error_type = models.CharField(max_length=60, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    ledger_entry_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "custom_id"], name="jobresult_once"),
        ]

    def __str__(self) -> str:
        return f"{self.custom_id}: {self.kind}"
