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
