"""JobRun: one row per background job, created before it is enqueued; the UI polls this row."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobRun(models.Model):
    """A background job (sync, plan, apply, materialize, preview, stats, skew) and its progress."""

    class Kind(models.TextChoices):
        SYNC = "sync", "Registry sync"
        PLAN = "plan", "Plan"
        APPLY = "apply", "Apply"
        MATERIALIZE = "materialize", "Materialize"
        PREVIEW = "preview", "Online preview"
        STATS = "stats", "Feature statistics"
        SKEW = "skew", "Skew check"
        TRAINING_DATASET = "training_dataset", "Training dataset"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="job_runs"
    )
    trigger = models.CharField(max_length=32, default="manual")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        """True once the run can no longer change."""
        return self.status in self.TERMINAL


class ViewLock(models.Model):
    """One row per feature view: the per-view materialization lock (a conditional UPDATE takes it).

    Works the same on PostgreSQL and SQLite. A lock whose `locked_until` passed (its worker died)
    can be taken over; a live run extends it on every chunk.
    """

    project = models.CharField(max_length=255)
    view = models.CharField(max_length=255)
    job_run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "view"], name="jobs_view_lock_unique")]

    def __str__(self) -> str:
        return f"{self.project}/{self.view}"


class MaterializationRecord(models.Model):
    """The ledger: one row per view per materialization run (interval, rows, duration, outcome)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (locked)"

    job_run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="materializations")
    project = models.CharField(max_length=255, db_index=True)
    view = models.CharField(max_length=255, db_index=True)
    start = models.DateTimeField()
    end = models.DateTimeField()
    covered_end = models.DateTimeField(null=True, blank=True, help_text="End of the last chunk written.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    rows_read = models.PositiveBigIntegerField(default=0)
    rows_written = models.PositiveBigIntegerField(default=0)
    rows_filtered = models.PositiveBigIntegerField(default=0)
    chunks = models.PositiveIntegerField(default=0)
    filter = models.CharField(max_length=500, blank=True)
    duration_seconds = models.FloatField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "view", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.project}/{self.view} {self.start:%Y-%m-%d}→{self.end:%Y-%m-%d} ({self.status})"

    @property
    def rows_per_second(self) -> float | None:
        """Throughput (rows written per second), None before any time was measured."""
        return self.rows_written / self.duration_seconds if self.duration_seconds > 0 else None


class FreshnessAlert(models.Model):
    """The last freshness state seen per view, so the stale webhook fires once per transition."""

    project = models.CharField(max_length=255)
    view = models.CharField(max_length=255)
    state = models.CharField(max_length=32)
    changed_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "view"], name="jobs_freshness_alert_unique")]

    def __str__(self) -> str:
        return f"{self.project}/{self.view}: {self.state}"
