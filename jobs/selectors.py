"""Reads for job pages and the jobs API (scoped to the user), and the materialization ledger."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from catalog.exceptions import NotPermitted, ObjectNotFound
from catalog.filters import filtered
from catalog.freshness import FreshnessResult, feature_view_freshness
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_operate, can_see_feature_values, can_view_catalog
from catalog.selectors import feature_value_team_ids
from catalog.timeparse import NotAnInstant, parse_instant
from jobs.filters import JobRunFilter
from jobs.models import JobRun, MaterializationRecord, TrainingDataset


def job_run_list(*, user: Any, params: Mapping[str, Any] | None = None) -> QuerySet[JobRun]:
    """Job runs the user may see, filtered by `params` (jobs.filters.JobRunFilter), newest first; the jobs page
    and the API list both read it. Operators see every run; other roles see their own runs and every
    non-preview run (preview results hold feature values somebody asked for). InvalidInput on a bad filter."""
    if not can_view_catalog(user):
        raise NotPermitted("you hold no portal role")
    qs = JobRun.objects.select_related("started_by")
    if not can_operate(user):
        qs = qs.filter(~Q(kind=JobRun.Kind.PREVIEW) | Q(started_by=user))
    rows: QuerySet[JobRun] = filtered(JobRunFilter, qs, params)
    return rows.order_by("-created_at", "-id")


def job_run_result(*, user: Any, run: JobRun) -> dict[str, Any]:
    """What the user may see of a run's result. Skew examples (an entity's online and offline values) and the
    top values of a non-numeric feature's statistics follow the feature-value rule (catalog.permissions);
    for anyone else they are left out and `values_hidden` says so. Counts, rates and numeric histograms stay."""
    result: dict[str, Any] = run.result or {}
    if run.kind not in (JobRun.Kind.SKEW, JobRun.Kind.STATS) or not result.get("features"):
        return result
    params = run.params or {}
    teams = feature_value_team_ids(project=str(params.get("project", "")), views=[str(params.get("view", ""))])
    if can_see_feature_values(user, team_ids=teams, asked_by_id=run.started_by_id):
        return result
    features = []
    for feature in result["features"]:
        feature = dict(feature)
        if run.kind == JobRun.Kind.SKEW:
            feature["examples"] = []
        elif "values" in (feature.get("histogram") or {}):
            feature["histogram"] = {}
        features.append(feature)
    return {**result, "features": features, "values_hidden": True}


def job_run_get(*, user: Any, pk: int) -> JobRun:
    """One job run the user may see (ObjectNotFound otherwise)."""
    run = job_run_list(user=user).filter(pk=pk).first()
    if run is None:
        raise ObjectNotFound(f"job {pk} does not exist")
    return run


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class Ledger:
    """A view's materialization history: what the registry records, the portal's runs, gaps, freshness."""

    view: CatalogObject
    intervals: list[Interval]  # merged, from the registry's materialization_intervals
    gaps: list[Interval]  # holes between the first start and the last end
    records: list[MaterializationRecord]
    last_success: MaterializationRecord | None
    last_record: MaterializationRecord | None
    freshness: FreshnessResult

    @property
    def failing(self) -> bool:
        """True when the latest portal run of this view failed."""
        return self.last_record is not None and self.last_record.status == MaterializationRecord.Status.FAILED

    def chart(self) -> dict[str, Any]:
        """Rows written over time (succeeded/failed runs) for plotly."""
        ordered = sorted(self.records, key=lambda r: r.created_at)
        return {
            "x": [r.created_at.isoformat() for r in ordered],
            "rows": [r.rows_written for r in ordered],
            "throughput": [round(r.rows_per_second or 0, 1) for r in ordered],
            "status": [r.status for r in ordered],
        }


def merge_intervals(raw: list[tuple[datetime, datetime]]) -> tuple[list[Interval], list[Interval]]:
    """Merge overlapping/adjacent intervals; return (covered, gaps between them)."""
    covered: list[Interval] = []
    for start, end in sorted(raw):
        if covered and start <= covered[-1].end:
            if end > covered[-1].end:
                covered[-1] = Interval(covered[-1].start, end)
        else:
            covered.append(Interval(start, end))
    gaps = [Interval(a.end, b.start) for a, b in itertools.pairwise(covered)]
    return covered, gaps


def _parse(value: Any) -> datetime | None:
    try:
        return parse_instant(value)
    except NotAnInstant:
        return None


def view_ledger(*, user: Any, project: str, view: str, limit: int = 200) -> Ledger:
    """The ledger of one feature view (visible to every portal role)."""
    if not can_view_catalog(user):
        raise NotPermitted("you hold no portal role")
    if "\x00" in project or "\x00" in view:
        raise ObjectNotFound("no such feature view")
    row = (
        CatalogObject.objects.filter(project__name=project, kind=CatalogObject.Kind.FEATURE_VIEW, name=view)
        .exclude(status=CatalogStatus.REMOVED)
        .select_related("project")
        .first()
    )
    if row is None:
        raise ObjectNotFound(f"feature view {project}/{view} does not exist")
    raw: list[tuple[datetime, datetime]] = []
    for item in row.materialization_intervals or []:
        start = _parse(item.get("start") if isinstance(item, dict) else item[0])
        end = _parse(item.get("end") if isinstance(item, dict) else item[1])
        if start and end:
            raw.append((start, end))
    covered, gaps = merge_intervals(raw)
    records = list(MaterializationRecord.objects.filter(project=project, view=view)[:limit])
    last_success = next((r for r in records if r.status == MaterializationRecord.Status.SUCCEEDED), None)
    return Ledger(
        view=row,
        intervals=covered,
        gaps=gaps,
        records=records,
        last_success=last_success,
        last_record=next((r for r in records if r.status != MaterializationRecord.Status.SKIPPED), None),
        freshness=feature_view_freshness(row),
    )


def online_views(*, user: Any) -> QuerySet[CatalogObject]:
    """Materializable views (batch/stream, online) for pickers and the freshness panel."""
    if not can_view_catalog(user):
        raise NotPermitted("you hold no portal role")
    return (
        CatalogObject.objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW, online=True)
        .exclude(status=CatalogStatus.REMOVED)
        .exclude(subkind="on_demand")
        .select_related("project")
        .order_by("project__name", "name")
    )


def latest_feature_statistics(*, user: Any, project: str, view: str) -> JobRun | None:
    """The newest successful statistics job of a view (its `result` holds per-feature stats), or None.

    For feature pages: `result["features"]` lists {feature, count, null_rate, min, max, mean, distinct,
    histogram}; `templates/jobs/partials/_feature_stats.html` renders one of them with plotly.
    """
    if not can_view_catalog(user):
        raise NotPermitted("you hold no portal role")
    return (
        JobRun.objects.filter(
            kind=JobRun.Kind.STATS, status=JobRun.Status.SUCCEEDED, params__project=project, params__view=view
        )
        .order_by("-finished_at", "-id")
        .first()
    )


def training_dataset_list(
    *, user: Any, project: str | None = None, feature_service: str | None = None, status: str | None = None
) -> QuerySet[TrainingDataset]:
    """Training datasets, newest first: their metadata is visible to every portal role (the rows are not:
    see jobs.permissions.can_read_training_dataset_rows)."""
    if not can_view_catalog(user):
        raise NotPermitted("you hold no portal role")
    qs = TrainingDataset.objects.select_related("created_by", "job_run")
    if project:
        qs = qs.filter(project=project)
    if feature_service:
        qs = qs.filter(feature_service=feature_service)
    if status:
        qs = qs.filter(status=status)
    return qs


def training_dataset_get(*, user: Any, pk: int) -> TrainingDataset:
    """One training dataset (ObjectNotFound when there is none)."""
    dataset = training_dataset_list(user=user).filter(pk=pk).first()
    if dataset is None:
        raise ObjectNotFound(f"training dataset {pk} does not exist")
    return dataset
