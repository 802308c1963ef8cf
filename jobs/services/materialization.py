"""Materialization runs: start (validated, row before enqueue), the per-view lock, the ledger, the run body."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound, PortalError, RegistryUnavailable
from catalog.leases import Lease
from catalog.models import CatalogObject, Project
from catalog.models.projects import Status as CatalogStatus
from catalog.notifications import notify
from catalog.permissions import can_operate
from catalog.services.sync import registry_sync
from catalog.timeparse import parse_time_input
from jobs.models import JobRun, MaterializationRecord, ViewLock
from jobs.services.core import JobFailed, job_run_log, job_run_progress, job_run_queue

logger = logging.getLogger(__name__)

MODES = ("incremental", "range")
FUTURE_SLACK = timedelta(minutes=1)  # an end this little past our clock is a client clock ahead: read as now


def _shown(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def reject_nul(**fields: Any) -> None:
    """PostgreSQL text and JSON cannot hold NUL characters: refuse them as bad input, naming the field."""

    def has_nul(value: Any) -> bool:
        if isinstance(value, str):
            return "\x00" in value
        if isinstance(value, dict):
            return any(has_nul(k) or has_nul(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(has_nul(v) for v in value)
        return False

    for name, value in fields.items():
        if has_nul(value):
            raise InvalidInput(f"{name} contains a NUL character", {name: ["NUL characters are not allowed"]})


def materialization_params(
    *,
    project: str | None,
    views: list[str] | None,
    mode: str,
    start: Any = None,
    end: Any = None,
    chunk_hours: int | None = None,
) -> dict[str, Any]:
    """Validate a materialization request against the catalog; the JSON params of its JobRun.

    Bad input raises InvalidInput / ObjectNotFound and changes nothing.
    """
    reject_nul(project=project, views=views, mode=mode, start=start, end=end)
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}", {"mode": [f"one of {', '.join(MODES)}"]})
    start_at, end_at = parse_time_input("start", start), parse_time_input("end", end)
    if mode == "range" and start_at is None:
        raise InvalidInput("a range materialization needs a start", {"start": ["required with mode=range"]})
    now = timezone.now()
    if end_at is not None and end_at > now + FUTURE_SLACK:
        # Feast would record the future interval as materialized, and the next incremental run would
        # start after it: rows that arrive meanwhile would never be served.
        raise InvalidInput(
            f"end {_shown(end_at)} is in the future (now {_shown(now)}): materialize up to now at most, "
            "or leave end empty for now",
            {"end": ["must not be in the future (empty: now)"]},
        )
    if mode == "range" and end_at is None:
        end_at = now  # as the form says: the end defaults to now
    if mode == "range" and start_at is not None and start_at >= now:
        raise InvalidInput(
            f"start {_shown(start_at)} is not in the past (now {_shown(now)}): there is nothing to materialize yet",
            {"start": ["must be in the past"]},
        )
    if end_at is not None:
        end_at = min(end_at, now)  # within the slack: a client clock a little ahead of ours
    if mode == "incremental" and start_at is not None:
        raise InvalidInput("an incremental materialization takes no start", {"start": ["only with mode=range"]})
    if start_at and end_at and start_at >= end_at:
        raise InvalidInput("start must be before end", {"start": ["must be before end"]})
    if chunk_hours is not None and not 1 <= int(chunk_hours) <= 24 * 366:
        raise InvalidInput("chunk_hours must be between 1 and 8784", {"chunk_hours": ["1..8784"]})
    if views and not project:
        raise InvalidInput("name the project of the views", {"project": ["required when views are given"]})
    if project:
        if not Project.objects.filter(name=project).exclude(status=CatalogStatus.REMOVED).exists():
            raise ObjectNotFound(f"project {project} is not in the catalog")
        online = CatalogObject.objects.filter(project__name=project, kind=CatalogObject.Kind.FEATURE_VIEW).exclude(
            status=CatalogStatus.REMOVED
        )
        known = {v.name: v for v in online}
        for name in views or []:
            if name not in known:
                raise ObjectNotFound(f"feature view {name} is not in project {project}")
            if known[name].subkind == "on_demand":
                raise InvalidInput(f"{name} is an on-demand view: nothing to materialize", {"views": [name]})
            if not known[name].online:
                raise InvalidInput(f"{name} is not an online view (online=False)", {"views": [name]})
    return {
        "project": project or None,
        "views": list(views) if views else None,
        "mode": mode,
        "start": start_at.isoformat() if start_at else None,
        "end": end_at.isoformat() if end_at else None,
        "chunk_hours": int(chunk_hours) if chunk_hours else None,
    }


@transaction.atomic
def materialization_start(
    *,
    actor: Any,
    project: str | None = None,
    views: list[str] | None = None,
    mode: str = "incremental",
    start: Any = None,
    end: Any = None,
    chunk_hours: int | None = None,
    trigger: str = "button",
) -> JobRun:
    """Queue a materialization (browser, API, command): validate, create the JobRun, enqueue on commit."""
    if actor is not None and not can_operate(actor):
        raise NotPermitted("only operators may materialize")
    params = materialization_params(
        project=project, views=views, mode=mode, start=start, end=end, chunk_hours=chunk_hours
    )
    return job_run_queue(
        kind=JobRun.Kind.MATERIALIZE,
        params=params,
        actor=actor,
        trigger=trigger,
        action="materialization.started",
    )


# --- The per-view lock ----------------------------------------------------------------------------


VIEW_LOCK = Lease(ViewLock, until="locked_until", holder="job_run")  # one materialization per view


def view_lock_acquire(*, project: str, view: str, run: JobRun, lease: timedelta) -> bool:
    """Take the view's lock for `run` (free, expired, or already ours)."""
    ViewLock.objects.get_or_create(project=project, view=view)
    return VIEW_LOCK.take(run, lease, project=project, view=view)


# --- The run body (in the worker) -------------------------------------------------------------------


@dataclass
class _Progress:
    run: JobRun
    done: int = 0
    total: int = 0


def _chunks_of(target: gateway.MaterializationTarget, chunk: timedelta) -> int:
    return max(1, math.ceil((target.end - target.start) / chunk))


def materialization_run(run: JobRun) -> dict[str, Any]:
    """Materialize per view in time chunks, under per-view locks, recording the ledger; then sync."""
    params = run.params
    start = parse_time_input("start", params.get("start"))
    end = parse_time_input("end", params.get("end")) or timezone.now()
    chunk = timedelta(hours=params.get("chunk_hours") or settings.PORTAL_MATERIALIZE_CHUNK_HOURS)
    batch_size = settings.FEAST_ONLINE_WRITE_BATCH_SIZE
    lease = max(timedelta(minutes=10), timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT))
    plan: list[tuple[gateway.RepoRef, gateway.MaterializationTarget]] = []
    project = params.get("project")
    repos = [gateway.project_repo(project)] if project else list(gateway.project_repos().values())
    for repo in repos:
        for target in gateway.materialization_targets(repo, views=params.get("views"), start=start, end=end):
            plan.append((repo, target))
    progress = _Progress(run=run, total=sum(_chunks_of(t, chunk) for _, t in plan))
    job_run_progress(run=run, done=0, total=progress.total, message=f"{len(plan)} view(s) to materialize")
    job_run_log(
        run=run,
        line=f"plan: {', '.join(f'{t.view} {t.start:%Y-%m-%d %H:%M}→{t.end:%Y-%m-%d %H:%M}' for _, t in plan) or 'nothing to do'}",
    )
    views_out: list[dict[str, Any]] = []
    failures: list[str] = []
    for repo, target in plan:
        views_out.append(_materialize_one(run, repo, target, chunk, batch_size, lease, progress, failures))
    if plan:
        # Mirror the new intervals into the catalog. A run over every project syncs whole registries
        # (recording their fingerprint); a project run syncs that project.
        sync_runs = registry_sync(project=params.get("project"), trigger="materialize", force=True)
        job_run_log(run=run, line=f"catalog sync: {', '.join(r.status for r in sync_runs)}")
    total_rows = sum(v["rows_written"] for v in views_out)
    job_run_progress(
        run=run, done=progress.total, total=progress.total, message=f"{total_rows} rows written to the online store"
    )
    result: dict[str, Any] = {
        "views": views_out,
        "rows_written": total_rows,
        "skipped": [v["view"] for v in views_out if v["status"] == MaterializationRecord.Status.SKIPPED],
    }
    if failures:
        raise JobFailed("; ".join(failures), result)
    return result


def _materialize_one(
    run: JobRun,
    repo: gateway.RepoRef,
    target: gateway.MaterializationTarget,
    chunk: timedelta,
    batch_size: int,
    lease: timedelta,
    progress: _Progress,
    failures: list[str],
) -> dict[str, Any]:
    chunks_planned = _chunks_of(target, chunk)
    record = MaterializationRecord(
        job_run=run,
        project=target.project,
        view=target.view,
        start=target.start,
        end=target.end,
        filter=target.filter[:500],
    )
    if not view_lock_acquire(project=target.project, view=target.view, run=run, lease=lease):
        record.status = MaterializationRecord.Status.SKIPPED
        record.error = "another run holds this view's lock"
        record.finished_at = timezone.now()
        record.save()
        progress.done += chunks_planned
        # Not a failure: the other run is doing this view's work (a nightly run overlapping a manual one).
        job_run_log(run=run, line=f"{target.view}: skipped, another run is materializing it")
        return _record_dict(record)
    record.save()
    started = time.monotonic()
    job_run_log(run=run, line=f"{target.view}: {chunks_planned} chunk(s), filter {target.filter or '(none)'}")

    def on_chunk(result: gateway.ChunkResult) -> None:
        progress.done += 1
        MaterializationRecord.objects.filter(pk=record.pk).update(
            rows_read=F("rows_read") + result.rows_read,
            rows_written=F("rows_written") + result.rows_written,
            rows_filtered=F("rows_filtered") + result.rows_filtered,
            chunks=F("chunks") + 1,
            covered_end=result.end,
            duration_seconds=time.monotonic() - started,
        )
        VIEW_LOCK.extend(run, lease, project=target.project, view=target.view)
        job_run_progress(
            run=run,
            done=progress.done,
            total=progress.total,
            message=f"{target.view}: MATERIALIZING, chunk up to {result.end:%Y-%m-%d %H:%M} "
            f"({result.rows_written} rows)",
        )

    try:
        gateway.materialize_view(
            repo,
            view=target.view,
            start=target.start,
            end=target.end,
            chunk=chunk,
            batch_size=batch_size,
            on_chunk=on_chunk,
        )
    except Exception as exc:
        message = str(exc) if isinstance(exc, PortalError) else f"{type(exc).__name__}: {exc}"
        MaterializationRecord.objects.filter(pk=record.pk).update(
            status=MaterializationRecord.Status.FAILED,
            error=message[:5000],
            finished_at=timezone.now(),
            duration_seconds=time.monotonic() - started,
        )
        failures.append(f"{target.view}: {message}")
        job_run_log(run=run, line=f"{target.view}: FAILED: {message}")
        notify(
            "materialization.failed",
            f"Materialization of {target.project}/{target.view} failed: {message[:300]}",
            {"project": target.project, "view": target.view, "job_run": run.pk, "error": message[:500]},
        )
        if not isinstance(exc, PortalError):
            logger.exception("materialization of %s failed", target.view)
        if isinstance(exc, gateway.OnlineStoreUnavailable | RegistryUnavailable):
            VIEW_LOCK.release(run, project=target.project, view=target.view)
            raise
    else:
        MaterializationRecord.objects.filter(pk=record.pk).update(
            status=MaterializationRecord.Status.SUCCEEDED,
            finished_at=timezone.now(),
            duration_seconds=time.monotonic() - started,
        )
        job_run_log(run=run, line=f"{target.view}: done")
    finally:
        VIEW_LOCK.release(run, project=target.project, view=target.view)
    record.refresh_from_db()
    return _record_dict(record)


def _record_dict(record: MaterializationRecord) -> dict[str, Any]:
    return {
        "view": record.view,
        "project": record.project,
        "start": record.start.isoformat(),
        "end": record.end.isoformat(),
        "status": record.status,
        "rows_read": record.rows_read,
        "rows_written": record.rows_written,
        "rows_filtered": record.rows_filtered,
        "chunks": record.chunks,
        "duration_seconds": round(record.duration_seconds, 3),
        "rows_per_second": round(record.rows_per_second, 1) if record.rows_per_second else None,
        "error": record.error,
    }
