"""The offline/online skew check: a job comparing online values with Feast's latest offline values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.jsonvalues import json_value
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_operate
from catalog.timeparse import parse_time_input
from jobs.models import JobRun
from jobs.services.core import job_run_progress, job_run_queue
from jobs.services.materialization import reject_nul

MAX_SAMPLE = 10_000


def skew_params(*, project: str, view: str, sample: int = 100, as_of: Any = None) -> dict[str, Any]:
    """Validate a skew check against the catalog (bad input raises and changes nothing)."""
    reject_nul(project=project, view=view, as_of=as_of)
    row = (
        CatalogObject.objects.filter(project__name=project, kind=CatalogObject.Kind.FEATURE_VIEW, name=view)
        .exclude(status=CatalogStatus.REMOVED)
        .first()
    )
    if row is None:
        raise ObjectNotFound(f"feature view {project}/{view} does not exist")
    if row.subkind == "on_demand" or not row.online:
        raise InvalidInput(f"{view} is not materialized online: nothing to compare", {"view": [view]})
    if not 1 <= int(sample) <= MAX_SAMPLE:
        raise InvalidInput(f"sample must be between 1 and {MAX_SAMPLE}", {"sample": [f"1..{MAX_SAMPLE}"]})
    at = parse_time_input("as_of", as_of)
    return {"project": project, "view": view, "sample": int(sample), "as_of": at.isoformat() if at else None}


@transaction.atomic
def skew_check_start(
    *, actor: Any, project: str, view: str, sample: int = 100, as_of: Any = None, trigger: str
) -> JobRun:
    """Queue a skew check (operators): validate, create the JobRun, enqueue on commit."""
    if actor is not None and not can_operate(actor):
        raise NotPermitted("only operators may run skew checks")
    params = skew_params(project=project, view=view, sample=sample, as_of=as_of)
    return job_run_queue(
        kind=JobRun.Kind.SKEW,
        params=params,
        actor=actor,
        trigger=trigger,
        action="skew_check.started",
    )


def skew_check_run(run: JobRun) -> dict[str, Any]:
    """The worker side: sample entities, compare online with offline, report per-feature mismatch rates."""
    params = run.params
    as_of: datetime = parse_time_input("as_of", params.get("as_of")) or timezone.now()
    repo = gateway.project_repo(params["project"])
    job_run_progress(run=run, done=0, total=1, message=f"sampling {params['sample']} entities of {params['view']}")
    report = gateway.skew_check(repo, view=params["view"], sample=params["sample"], as_of=as_of)
    features: list[dict[str, Any]] = [
        {
            "feature": f.feature,
            "compared": f.compared,
            "mismatches": f.mismatches,
            "missing_online": f.missing_online,
            "mismatch_rate": round(f.mismatch_rate, 6),
            "examples": [{k: json_value(v) for k, v in e.items()} for e in f.examples],
        }
        for f in report.features
    ]
    compared = sum(f["compared"] for f in features)
    mismatched = sum(f["mismatches"] for f in features)
    job_run_progress(run=run, done=1, total=1, message=f"{mismatched} mismatching values of {compared} compared")
    return {
        "project": params["project"],
        "view": params["view"],
        "as_of": as_of.isoformat(),
        "sampled": len(report.sampled),
        "features": features,
        "mismatch_rate": round(mismatched / compared, 6) if compared else 0.0,
    }
