"""Celery tasks: thin interfaces over services. Arguments are JSON (ids and plain values).

Every queued job runs through one task, `jobs.run`, which looks its kind up in jobs/kinds.py; services
publish it by name (jobs.services.core.RUN_TASK), so they never import this module. The beat schedules'
tasks (`jobs.registry_sync`, `jobs.materialize`) create their JobRun row themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from jobs import services
from jobs.kinds import JOB_KINDS
from jobs.models import JobRun
from jobs.services.apply import change_requests_sweep
from jobs.services.core import RUN_TASK, registry_sync_run
from jobs.services.freshness import freshness_check
from jobs.services.materialization import materialization_params, materialization_run
from jobs.services.preview import job_run_notify
from jobs.services.training import training_datasets_reconcile

logger = logging.getLogger(__name__)


def _run_job(task: Task[Any, Any], /, job_run_id: int) -> None:
    """Run one queued JobRun: claim it, run its kind's worker side with a heartbeat, record the outcome."""
    kind = JobRun.objects.filter(pk=job_run_id).values_list("kind", flat=True).first()
    spec = JOB_KINDS.get(str(kind)) if kind else None
    if spec is None:
        logger.warning("job run %s: no such run, or no worker side for its kind %r", job_run_id, kind)
        return
    try:
        services.job_run_execute(
            job_run_id=job_run_id, kind=spec.kind, params={}, celery_task_id=task.request.id or "", body=spec.run
        )
    finally:
        if spec.wakes_waiters:
            job_run_notify(job_run_id)  # after the row is committed (autocommit), success or failure


# The JobRun row is every job's state and result: Celery's own result and STARTED state (two writes to the
# result backend per task) are read by nobody, so the task skips them. Messages queued under the per-kind
# task names of earlier releases still run (a rolling deploy).
def _job_task(name: str) -> Any:
    return shared_task(
        name=name, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, track_started=False
    )(_run_job)


run_job_task = _job_task(RUN_TASK)
for _legacy_name in (
    "jobs.online_preview",
    "jobs.skew_check",
    "jobs.feature_statistics",
    "jobs.change_request_apply",
    "jobs.training_dataset",
):
    _job_task(_legacy_name)


@shared_task(name="jobs.registry_sync", bind=True, acks_late=True, reject_on_worker_lost=True)
def registry_sync_task(
    self: Task[Any, Any],
    job_run_id: int | None = None,
    project: str | None = None,
    force: bool = False,
    trigger: str = "schedule",
) -> None:
    """Beat's sync: mirror the Feast registries into the catalog (idempotent: an unchanged registry is a no-op)."""
    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.SYNC,
        params={"project": project, "force": force},
        celery_task_id=self.request.id or "",
        body=registry_sync_run,
        trigger=trigger,
    )


@shared_task(name="jobs.materialize", bind=True, acks_late=True, reject_on_worker_lost=True)
def materialize_task(
    self: Task[Any, Any],
    job_run_id: int | None = None,
    project: str | None = None,
    views: list[str] | None = None,
    mode: str = "incremental",
    start: str | None = None,
    end: str | None = None,
    chunk_hours: int | None = None,
    trigger: str = "schedule",
) -> None:
    """Beat's and the CronJob's materialization, view by view in time chunks (idempotent per chunk)."""
    params = materialization_params(
        project=project, views=views, mode=mode, start=start, end=end, chunk_hours=chunk_hours
    )
    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.MATERIALIZE,
        params=params,
        celery_task_id=self.request.id or "",
        body=materialization_run,
        trigger=trigger,
    )


@shared_task(name="jobs.sweep_stale_runs")
def sweep_stale_runs_task() -> dict[str, int]:
    """Mark runs whose worker died as failed, so nothing stays 'running' forever."""
    swept = services.stale_runs_sweep()
    swept["change_requests"] = change_requests_sweep()
    swept["training_datasets"] = training_datasets_reconcile()
    return swept


@shared_task(name="jobs.freshness_check")
def freshness_check_task() -> dict[str, Any]:
    """Fresh/stale per online view; the webhook fires once per view that turned stale."""
    return freshness_check()


training_dataset_task = run_job_task  # the name tests and operators know for running a queued dataset by hand
