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
    requeued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper published the run again: its first queue message was lost."
    )

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


class TrainingDataset(models.Model):
    """A training dataset built by a `training_dataset` job: Feast's point-in-time join of a feature
    service (or a feature list) onto an entity dataframe, written to the dataset storage.

    `contract` / `contract_hash` are the model contract the columns follow (catalog.contracts); a
    model trained on this dataset pins that hash. `columns` is the schema with null rates and
    `preview` the first rows (shown only to those who may download). Files live under `storage_uri`.
    """

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class EntitySource(models.TextChoices):
        UPLOAD = "upload", "Uploaded entity file"
        INLINE = "inline", "Entity rows in the request"
        TIMESTAMPS = "timestamps", "Every entity at given times"

    job_run = models.OneToOneField(JobRun, on_delete=models.CASCADE, related_name="training_dataset")
    name = models.SlugField(max_length=200)
    project = models.CharField(max_length=255, db_index=True)
    feature_service = models.CharField(max_length=255, blank=True, db_index=True, help_text="Blank: a feature list.")
    service_version = models.PositiveIntegerField(null=True, blank=True, help_text="Catalog version of the service.")
    features = models.JSONField(default=list, help_text="The `view:feature` references requested, in order.")
    contract = models.JSONField(default=list, help_text="The contract entries the feature columns follow.")
    contract_hash = models.CharField(max_length=64, db_index=True)
    entity_source = models.CharField(max_length=16, choices=EntitySource.choices)
    entity_file_name = models.CharField(max_length=255, blank=True)
    entity_timestamps = models.JSONField(default=list, blank=True)
    entity_rows = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BUILDING, db_index=True)
    row_count = models.PositiveBigIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=list, blank=True)
    min_event_timestamp = models.DateTimeField(null=True, blank=True)
    max_event_timestamp = models.DateTimeField(null=True, blank=True)
    storage_uri = models.CharField(max_length=1000, blank=True, help_text="The dataset's directory (local or s3://).")
    files = models.JSONField(default=dict, blank=True, help_text="format → {name, bytes}: parquet, csv, contract.")
    saved_dataset = models.CharField(max_length=255, blank=True, help_text="The Feast saved dataset registered.")
    saved_dataset_note = models.CharField(max_length=500, blank=True, help_text="Why no saved dataset was registered.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="jobs_training_dataset_unique_name")]
        indexes = [models.Index(fields=["project", "feature_service", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.project}/{self.name}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("jobs:dataset_detail", args=[self.pk])

    @property
    def feature_columns(self) -> list[str]:
        """The feature columns, in contract order."""
        return [str(e["column"]) for e in self.contract]


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, written from its consumer's event loop every few seconds
    (portal/worker_health.py): what /readyz and the dashboard read to say whether any worker is alive."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField(default=0)
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname} (pid {self.pid}) last seen {self.last_seen:%Y-%m-%d %H:%M:%S}"


class PlanUpload(models.Model):
    """An uploaded feature repo waiting for its plan job (jobs.services.planning): the archive's bytes, kept in
    the database because the web pod that took the upload and the worker that parses it may be different
    machines. Deleted when the job ends (and by the sweeper, for a run whose worker died)."""

    job_run = models.OneToOneField(JobRun, on_delete=models.CASCADE, related_name="plan_upload")
    filename = models.CharField(max_length=255)
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.filename} for job #{self.job_run_id}"
