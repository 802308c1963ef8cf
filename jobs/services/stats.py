"""Feature statistics: a job computing count, null rate, min/max/mean, distinct and a histogram per
feature from the offline store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_operate
from catalog.timeparse import parse_time_input
from jobs.models import JobRun
from jobs.services.core import job_run_progress, job_run_queue
from jobs.services.materialization import reject_nul

DEFAULT_WINDOW = timedelta(days=365)


def stats_params(*, project: str, view: str, start: Any = None, end: Any = None) -> dict[str, Any]:
    """Validate a statistics request against the catalog (bad input raises and changes nothing)."""
    reject_nul(project=project, view=view, start=start, end=end)
    row = (
        CatalogObject.objects.filter(project__name=project, kind=CatalogObject.Kind.FEATURE_VIEW, name=view)
        .exclude(status=CatalogStatus.REMOVED)
        .first()
    )
    if row is None:
        raise ObjectNotFound(f"feature view {project}/{view} does not exist")
    if row.subkind == "on_demand":
        raise InvalidInput(f"{view} is an on-demand view: it has no offline rows", {"view": [view]})
    start_at, end_at = parse_time_input("start", start), parse_time_input("end", end)
    if start_at and end_at and start_at >= end_at:
        raise InvalidInput("start must be before end", {"start": ["must be before end"]})
    return {
        "project": project,
        "view": view,
        "start": start_at.isoformat() if start_at else None,
        "end": end_at.isoformat() if end_at else None,
    }


@transaction.atomic
def feature_statistics_start(
    *, actor: Any, project: str, view: str, start: Any = None, end: Any = None, trigger: str
) -> JobRun:
    """Queue a statistics job (operators): validate, create the JobRun, enqueue on commit."""
    if actor is not None and not can_operate(actor):
        raise NotPermitted("only operators may compute feature statistics")
    params = stats_params(project=project, view=view, start=start, end=end)
    return job_run_queue(
        kind=JobRun.Kind.STATS,
        params=params,
        actor=actor,
        trigger=trigger,
        action="feature_statistics.started",
    )


def feature_statistics_run(run: JobRun) -> dict[str, Any]:
    """The worker side: read the view's offline rows in the range and describe every feature."""
    params = run.params
    end = parse_time_input("end", params.get("end")) or timezone.now()
    start = parse_time_input("start", params.get("start")) or end - DEFAULT_WINDOW
    repo = gateway.project_repo(params["project"])
    job_run_progress(run=run, done=0, total=1, message=f"reading {params['view']} from the offline store")
    rows, stats = gateway.feature_statistics(repo, view=params["view"], start=start, end=end)
    job_run_progress(run=run, done=1, total=1, message=f"{rows} offline rows described")
    return {
        "project": params["project"],
        "view": params["view"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": rows,
        "features": [
            {
                "feature": s.feature,
                "dtype": s.dtype,
                "count": s.count,
                "nulls": s.nulls,
                "null_rate": round(s.null_rate, 6),
                "distinct": s.distinct,
                "min": s.minimum,
                "max": s.maximum,
                "mean": s.mean,
                "histogram": s.histogram,
            }
            for s in stats
        ],
    }
