"""Celery tasks: thin interfaces over services. Arguments are JSON (ids and plain values)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from catalog.services.sync import registry_sync
from jobs import services
from jobs.models import JobRun
from jobs.services.apply import change_request_apply_run, change_requests_sweep
from jobs.services.freshness import freshness_check
from jobs.services.materialization import materialization_params, materialization_run
from jobs.services.preview import job_run_notify, online_preview_run
from jobs.services.skew import skew_check_run
from jobs.services.stats import feature_statistics_run
from jobs.services.training import training_dataset_run, training_datasets_reconcile


@shared_task(name="jobs.registry_sync", bind=True, acks_late=True, reject_on_worker_lost=True)
def registry_sync_task(
    self: Task[Any, Any],
    job_run_id: int | None = None,
    project: str | None = None,
    force: bool = False,
    trigger: str = "schedule",
) -> None:
    """Mirror the Feast registries into the catalog (idempotent: an unchanged registry is a no-op)."""

    def body(run: JobRun) -> dict[str, Any]:
        runs = registry_sync(project=project, trigger=run.trigger, actor=run.started_by, force=force)
        result: dict[str, Any] = {
            "sync_runs": [
                {
                    "id": r.pk,
                    "registry": r.registry_key,
                    "status": r.status,
                    "added": r.added,
                    "changed": r.changed,
                    "removed": r.removed,
                    "out_of_band": r.out_of_band,
                    "error": r.error,
                }
                for r in runs
            ]
        }
        failed = [r for r in runs if r.status == "failed"]
        if failed:
            result["_failed"] = True
            result["error"] = "; ".join(r.error for r in failed)
        return result

    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.SYNC,
        params={"project": project, "force": force},
        celery_task_id=self.request.id or "",
        body=body,
        trigger=trigger,
    )


@shared_task(name="jobs.sweep_stale_runs")
def sweep_stale_runs_task() -> dict[str, int]:
    """Mark runs whose worker died as failed, so nothing stays 'running' forever."""
    swept = services.stale_runs_sweep()
    swept["change_requests"] = change_requests_sweep()
    swept["training_datasets"] = training_datasets_reconcile()
    return swept


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
    """Materialize views into the online store, view by view in time chunks (idempotent per chunk)."""
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


# The JobRun row is the preview's state and result: Celery's own result and STARTED state (two writes
# to the result backend per task) are not read by anyone, so this task skips them.
@shared_task(
    name="jobs.online_preview",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    track_started=False,
)
def online_preview_task(self: Task[Any, Any], job_run_id: int) -> None:
    """Read a preview's online values; the web tier waits on the JobRun row, woken by job_run_notify."""
    try:
        services.job_run_execute(
            job_run_id=job_run_id,
            kind=JobRun.Kind.PREVIEW,
            params={},
            celery_task_id=self.request.id or "",
            body=online_preview_run,
        )
    finally:
        job_run_notify(job_run_id)  # after the row is committed (autocommit), success or failure


@shared_task(name="jobs.freshness_check")
def freshness_check_task() -> dict[str, Any]:
    """Fresh/stale per online view; the webhook fires once per view that turned stale."""
    return freshness_check()


@shared_task(name="jobs.skew_check", bind=True, acks_late=True, reject_on_worker_lost=True)
def skew_check_task(self: Task[Any, Any], job_run_id: int) -> None:
    """Compare online values with the latest offline values for a sample of entities."""
    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.SKEW,
        params={},
        celery_task_id=self.request.id or "",
        body=skew_check_run,
    )


@shared_task(name="jobs.feature_statistics", bind=True, acks_late=True, reject_on_worker_lost=True)
def feature_statistics_task(self: Task[Any, Any], job_run_id: int) -> None:
    """Describe a view's features from the offline store (count, nulls, min/max/mean, distinct, histogram)."""
    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.STATS,
        params={},
        celery_task_id=self.request.id or "",
        body=feature_statistics_run,
    )


@shared_task(name="jobs.change_request_apply", bind=True, acks_late=True, reject_on_worker_lost=True)
def change_request_apply_task(self: Task[Any, Any], job_run_id: int) -> None:
    """Apply an approved change request's stored protos (see jobs.services.apply)."""
    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.APPLY,
        params={},
        celery_task_id=self.request.id or "",
        body=change_request_apply_run,
    )


@shared_task(name="jobs.training_dataset", bind=True, acks_late=True, reject_on_worker_lost=True)
def training_dataset_task(self: Task[Any, Any], job_run_id: int) -> None:
    """Build a training dataset: Feast's point-in-time join, written in contract order (see jobs.services.training)."""
    services.job_run_execute(
        job_run_id=job_run_id,
        kind=JobRun.Kind.TRAINING_DATASET,
        params={},
        celery_task_id=self.request.id or "",
        body=training_dataset_run,
    )
