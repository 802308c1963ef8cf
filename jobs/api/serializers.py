"""Jobs API serializers: explicit output fields, plain input serializers (no logic in create/update)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.models import JobRun, MaterializationRecord, TrainingDataset
from jobs.selectors import job_run_result

# Named choice sets for the OpenAPI schema (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
JOB_KINDS = JobRun.Kind.choices
JOB_STATUSES = JobRun.Status.choices
TRAINING_DATASET_STATUSES = TrainingDataset.Status.choices


class JobRunOutputSerializer(serializers.ModelSerializer[JobRun]):
    started_by = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    progress_percent = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField(
        help_text="The job's result; skew examples and top values of statistics only for those who may see "
        "feature values (`values_hidden` is true when they were left out)."
    )

    class Meta:
        model = JobRun
        fields = [
            "id",
            "url",
            "kind",
            "params",
            "trigger",
            "started_by",
            "status",
            "progress_done",
            "progress_total",
            "progress_percent",
            "progress_message",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "result",
            "error",
            "celery_task_id",
            "attempts",
        ]

    def get_started_by(self, run: JobRun) -> str | None:
        return run.started_by.get_username() if run.started_by else None

    def get_url(self, run: JobRun) -> str:
        return f"/api/v1/jobs/{run.pk}/"

    def get_progress_percent(self, run: JobRun) -> int:
        return progress_percent(run)

    def get_result(self, run: JobRun) -> dict[str, Any]:
        request = self.context.get("request")
        return job_run_result(user=getattr(request, "user", None), run=run)


class JobRunDetailOutputSerializer(JobRunOutputSerializer):
    log = serializers.CharField()
    materializations = serializers.SerializerMethodField()

    class Meta(JobRunOutputSerializer.Meta):
        fields = [*JobRunOutputSerializer.Meta.fields, "log", "materializations"]

    def get_materializations(self, run: JobRun) -> list[dict[str, Any]]:
        return MaterializationRecordOutputSerializer(run.materializations.order_by("id"), many=True).data  # type: ignore[return-value]


class MaterializationRecordOutputSerializer(serializers.ModelSerializer[MaterializationRecord]):
    rows_per_second = serializers.FloatField(allow_null=True)

    class Meta:
        model = MaterializationRecord
        fields = [
            "id",
            "job_run",
            "project",
            "view",
            "start",
            "end",
            "covered_end",
            "status",
            "rows_read",
            "rows_written",
            "rows_filtered",
            "chunks",
            "filter",
            "duration_seconds",
            "rows_per_second",
            "error",
            "created_at",
            "finished_at",
        ]


def progress_percent(run: JobRun) -> int:
    """0..100 for the progress bar (100 once the run succeeded)."""
    if run.status == JobRun.Status.SUCCEEDED:
        return 100
    if not run.progress_total:
        return 0
    return min(100, int(100 * run.progress_done / run.progress_total))


class JobStartInputSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["materialize", "preview", "sync", "skew", "stats", "training_dataset"])
    project = serializers.CharField(required=False, allow_null=True, allow_blank=False, max_length=255)
    views = serializers.ListField(child=serializers.CharField(max_length=255), required=False, allow_null=True)
    mode = serializers.ChoiceField(choices=["incremental", "range"], required=False, default="incremental")
    start = serializers.DateTimeField(
        required=False, allow_null=True, help_text="materialize (mode=range) and stats: the start; in the past"
    )
    end = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="materialize: the end, not in the future (empty: now); stats: the end",
    )
    chunk_hours = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=24 * 366)
    feature_service = serializers.CharField(required=False, allow_null=True, max_length=255)
    features = serializers.ListField(child=serializers.CharField(max_length=511), required=False, allow_null=True)
    entities = serializers.DictField(required=False, allow_null=True)
    force = serializers.BooleanField(required=False, default=False)
    view = serializers.CharField(required=False, max_length=255)  # skew
    sample = serializers.IntegerField(required=False, default=100, min_value=1, max_value=10_000)  # skew
    as_of = serializers.DateTimeField(required=False, allow_null=True)  # skew
    # training_dataset: one entity source (a CSV/parquet file in a multipart body, `entities` columns, or
    # `entity_timestamps` for every entity with a value at those times), and an optional dataset name.
    entity_file = serializers.FileField(required=False, allow_null=True, allow_empty_file=True)
    entity_timestamps = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_null=True, max_length=1000
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class OnlinePreviewInputSerializer(serializers.Serializer[Any]):
    feature_service = serializers.CharField(required=False, allow_null=True, max_length=255)
    features = serializers.ListField(child=serializers.CharField(max_length=511), required=False, allow_null=True)
    entities = serializers.DictField(child=serializers.ListField())
    full_feature_names = serializers.BooleanField(required=False, default=True)  # accepted for Feast parity


class TrainingDatasetOutputSerializer(serializers.ModelSerializer[TrainingDataset]):
    """A training dataset's metadata (the rows are behind `preview` and the downloads, permission-checked)."""

    url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()
    job = serializers.IntegerField(source="job_run_id")
    job_status = serializers.CharField(source="job_run.status")
    created_by = serializers.SerializerMethodField()
    downloads = serializers.SerializerMethodField()

    class Meta:
        model = TrainingDataset
        fields = [
            "id",
            "url",
            "html_url",
            "name",
            "project",
            "feature_service",
            "service_version",
            "features",
            "contract_hash",
            "status",
            "job",
            "job_status",
            "entity_source",
            "entity_file_name",
            "entity_timestamps",
            "entity_rows",
            "row_count",
            "min_event_timestamp",
            "max_event_timestamp",
            "storage_uri",
            "files",
            "downloads",
            "saved_dataset",
            "saved_dataset_note",
            "created_by",
            "created_at",
            "finished_at",
        ]

    def get_url(self, ds: TrainingDataset) -> str:
        return f"/api/v1/training-datasets/{ds.pk}/"

    def get_html_url(self, ds: TrainingDataset) -> str:
        return ds.get_absolute_url()

    def get_created_by(self, ds: TrainingDataset) -> str | None:
        return ds.created_by.get_username() if ds.created_by else None

    def get_downloads(self, ds: TrainingDataset) -> dict[str, str]:
        """format → API download URL, for the files the dataset has (permission-checked on GET)."""
        return {fmt: f"/api/v1/training-datasets/{ds.pk}/download/?format={fmt}" for fmt in (ds.files or {})}


class TrainingDatasetDetailOutputSerializer(TrainingDatasetOutputSerializer):
    """A dataset with its contract, schema (null rates) and, for those who may read rows, the first rows."""

    contract = serializers.JSONField()
    columns = serializers.JSONField()
    preview = serializers.SerializerMethodField()

    class Meta(TrainingDatasetOutputSerializer.Meta):
        fields = [*TrainingDatasetOutputSerializer.Meta.fields, "contract", "columns", "preview"]

    def get_preview(self, ds: TrainingDataset) -> list[dict[str, Any]] | None:
        """The first rows; null when the requester may not read the dataset's rows."""
        return ds.preview if self.context.get("can_read_rows") else None


class TrainingDatasetInputSerializer(serializers.Serializer[Any]):
    """Build a training dataset (JSON, or multipart with `entity_file`)."""

    project = serializers.CharField(max_length=255)
    feature_service = serializers.CharField(required=False, allow_null=True, max_length=255)
    features = serializers.ListField(child=serializers.CharField(max_length=511), required=False, allow_null=True)
    entity_file = serializers.FileField(required=False, allow_null=True, allow_empty_file=True)
    entities = serializers.DictField(required=False, allow_null=True)
    entity_timestamps = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_null=True, max_length=1000
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
