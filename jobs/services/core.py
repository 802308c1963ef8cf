"""Job services (core): create the JobRun row, enqueue on commit, move runs through their states."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Self

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.exceptions import NotPermitted, PortalError
from catalog.models import SyncRun
from catalog.services.audit import audit_record
from catalog.services.sync import LEASE
from jobs.models import JobRun, MaterializationRecord, PlanUpload, ViewLock

RUN_TASK = "jobs.run"  # the one task every queued JobRun runs through (jobs/tasks.py; kinds in jobs/kinds.py)

logger = logging.getLogger(__name__)


class JobFailed(Exception):
    """A job's expected failure (a sync that failed, a view that did not materialize, a stale apply): the run
    is marked failed with `error`, keeps `result` (what it did get done) and logs no traceback. Anything else a
    job body raises is unexpected: the run is failed with the exception's text and the task logs it."""

    def __init__(self, error: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.result = {**(result or {}), "error": error}


def stale_after() -> timedelta:
    """A running job whose heartbeat is older than this lost its worker (SIGKILL, OOM, node gone)."""
    return timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS)


def _enqueue(run: JobRun) -> None:
    """Publish the generic `jobs.run` task for the row, by name (services never import the tasks module),
    once the caller's transaction commits."""
    from celery.utils import uuid

    # The task id is known before publishing: record it in the caller's transaction, so nothing but the
    # publish itself runs between the commit and the worker picking the task up.
    task_id = uuid()
    JobRun.objects.filter(pk=run.pk, celery_task_id="").update(celery_task_id=task_id)
    run.celery_task_id = task_id

    def send() -> None:
        from kombu.exceptions import OperationalError

        try:
            current_app.send_task(RUN_TASK, kwargs={"job_run_id": run.pk}, task_id=task_id)
        except (OperationalError, OSError) as exc:
            # The row is committed: say why it will never run instead of leaving it queued forever.
            logger.warning("could not enqueue job run %s: %s", run.pk, exc)
            JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).update(
                status=JobRun.Status.FAILED,
                finished_at=timezone.now(),
                error=f"could not enqueue the job: the Celery broker is unreachable ({exc})"[:10000],
            )

    transaction.on_commit(send)


def job_run_queue(
    *,
    kind: str,
    params: dict[str, Any],
    actor: Any,
    trigger: str,
    action: str,
    audit_after: dict[str, Any] | None = None,
) -> JobRun:
    """Create a job's JobRun row, audit it, and enqueue its task once the caller's transaction commits."""
    run = JobRun(kind=kind, params=params, started_by=actor, trigger=trigger)
    run.full_clean()
    run.save()
    audit_record(actor=actor, action=action, obj=run, after=params if audit_after is None else audit_after)
    _enqueue(run)
    return run


@transaction.atomic
def registry_sync_start(
    *, actor: Any, project: str | None = None, trigger: str = "button", force: bool = False
) -> JobRun:
    """Queue a registry sync (the sync-now button and API; operators, or the portal itself: `actor` None)."""
    from catalog.permissions import can_operate

    if actor is not None and not can_operate(actor):
        raise NotPermitted("only operators may sync the registry")
    return job_run_queue(
        kind=JobRun.Kind.SYNC,
        params={"project": project, "force": force},
        actor=actor,
        trigger=trigger,
        action="registry.sync_started",
    )


def registry_sync_run(run: JobRun) -> dict[str, Any]:
    """The worker side of a sync job: mirror the registries (run.params: project, force) into the catalog."""
    from catalog.services.sync import registry_sync

    params = run.params or {}
    runs = registry_sync(
        project=params.get("project"), trigger=run.trigger, actor=run.started_by, force=bool(params.get("force"))
    )
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
        raise JobFailed("; ".join(r.error for r in failed), result)
    return result


def job_run_claim(*, job_run_id: int, celery_task_id: str) -> JobRun | None:
    """QUEUED → RUNNING with a conditional UPDATE; None when another worker has it or it is finished."""
    now = timezone.now()
    if connection.vendor == "postgresql":  # one round trip: the conditional UPDATE returns the claimed row
        table = JobRun._meta.db_table
        claimed_rows = list(
            JobRun.objects.raw(
                f"UPDATE {table} SET status = %s, started_at = %s, heartbeat_at = %s, celery_task_id = %s, "
                f"attempts = attempts + 1 WHERE id = %s AND status = %s RETURNING *",
                [JobRun.Status.RUNNING, now, now, celery_task_id, job_run_id, JobRun.Status.QUEUED],
            )
        )
        return claimed_rows[0] if claimed_rows else None
    claimed = JobRun.objects.filter(pk=job_run_id, status=JobRun.Status.QUEUED).update(
        status=JobRun.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        celery_task_id=celery_task_id,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return JobRun.objects.get(pk=job_run_id)


def job_run_progress(*, run: JobRun, done: int, total: int, message: str = "") -> None:
    """Record progress (and a heartbeat) for a running job."""
    JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(
        progress_done=done, progress_total=total, progress_message=message[:500], heartbeat_at=timezone.now()
    )


def job_run_log(*, run: JobRun, line: str) -> None:
    """Append one line to a run's log (an UPDATE with concatenation: no read-modify-write race)."""
    stamp = timezone.now().strftime("%H:%M:%S")
    JobRun.objects.filter(pk=run.pk).update(log=Concat(F("log"), Value(f"{stamp} {line[:2000]}\n")))


class _Heartbeat:
    """Keeps a running job's heartbeat fresh while its body works.

    Long steps (one big chunk, a slow registry) then never look like a dead worker; a SIGKILLed worker
    takes its beater with it, so the sweeper still sees the heartbeat stop. One daemon thread per process
    beats for every run registered with it: entering costs a set insert, not a thread start (which an
    online preview of a few milliseconds would otherwise pay on every run).
    """

    _lock = threading.Lock()
    _runs: set[int] = set()
    _thread: threading.Thread | None = None

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id

    @classmethod
    def _beat_forever(cls) -> None:
        while True:
            time.sleep(max(1.0, settings.JOBS_STALE_AFTER_SECONDS / 3))
            with cls._lock:
                runs = sorted(cls._runs)
            if not runs:
                continue
            try:
                JobRun.objects.filter(pk__in=runs, status=JobRun.Status.RUNNING).update(heartbeat_at=timezone.now())
            except Exception:  # a database blip must not kill the beater; the next beat retries
                logger.exception("heartbeat of job runs %s failed", runs)
            finally:
                connection.close()

    def __enter__(self) -> Self:
        cls = type(self)
        with cls._lock:
            cls._runs.add(self.run_id)
            if cls._thread is None or not cls._thread.is_alive():  # first run, or a forked child
                cls._thread = threading.Thread(target=cls._beat_forever, name="job-heartbeat", daemon=True)
                cls._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with type(self)._lock:
            type(self)._runs.discard(self.run_id)


def job_run_finish(*, run: JobRun, status: str, result: dict[str, Any] | None = None, error: str = "") -> JobRun:
    """RUNNING → a terminal state (conditional: a sweeper may already have failed it)."""
    now = timezone.now()
    with transaction.atomic():  # the outcome and its audit event: one commit
        finished = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(
            status=status, finished_at=now, result=result or {}, error=error[:10000]
        )
        if finished:  # the row now holds exactly these values: no need to read the (maybe large) result back
            run.status, run.finished_at, run.result, run.error = status, now, result or {}, error[:10000]
        else:
            run.refresh_from_db()
        audit_record(
            actor=None,
            action=f"job.{status}",
            obj=run,
            after={"kind": run.kind, "error": error[:500]},
            job_run_id=run.pk,
        )
    return run


def job_run_execute(
    *,
    job_run_id: int | None,
    kind: str,
    params: dict[str, Any],
    celery_task_id: str,
    body: Callable[[JobRun], dict[str, Any]],
    trigger: str = "schedule",
) -> JobRun | None:
    """Run `body` inside the JobRun lifecycle. Scheduled runs (no job_run_id) get their row here."""
    if job_run_id is None:
        job_run_id = JobRun.objects.create(kind=kind, params=params, trigger=trigger).pk
    run = job_run_claim(job_run_id=job_run_id, celery_task_id=celery_task_id)
    if run is None:
        logger.info("job run %s already claimed or finished; nothing to do", job_run_id)
        return None
    try:
        with _Heartbeat(run.pk):
            result = body(run)
    except JobFailed as failure:
        return job_run_finish(run=run, status=JobRun.Status.FAILED, result=failure.result, error=failure.error)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        try:
            job_run_finish(run=run, status=JobRun.Status.FAILED, error=error)
        except DatabaseError:
            # The body's own database error left this connection unusable (an aborted transaction, a dropped
            # connection): record the real error on a fresh one rather than leave the sweeper to say "no heartbeat".
            connection.close()
            job_run_finish(run=run, status=JobRun.Status.FAILED, error=error)
        raise
    return job_run_finish(run=run, status=JobRun.Status.SUCCEEDED, result=result)


def stale_runs_sweep() -> dict[str, int]:
    """Fail job runs whose worker died (no heartbeat), their ledger rows and view locks, and sync runs
    that outlived their lease."""
    now = timezone.now()
    dead = list(
        JobRun.objects.filter(status=JobRun.Status.RUNNING, heartbeat_at__lt=now - stale_after()).values_list(
            "pk", flat=True
        )
    )
    jobs = JobRun.objects.filter(pk__in=dead, status=JobRun.Status.RUNNING).update(
        status=JobRun.Status.FAILED,
        finished_at=now,
        error="the worker stopped responding (no heartbeat); marked failed by the sweeper",
    )
    orphans = MaterializationRecord.objects.filter(
        status=MaterializationRecord.Status.RUNNING, job_run__status__in=JobRun.TERMINAL
    )
    orphaned_views = sorted(set(orphans.values_list("project", "view")))
    orphans.update(status=MaterializationRecord.Status.FAILED, finished_at=now, error="the run's worker died")
    ViewLock.objects.filter(job_run__status__in=JobRun.TERMINAL).update(job_run=None, locked_until=None)
    PlanUpload.objects.filter(job_run__status__in=JobRun.TERMINAL).delete()  # a plan job's worker died
    syncs = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started_at__lt=now - LEASE).update(
        status=SyncRun.Status.FAILED,
        finished_at=now,
        error="the sync did not finish within its lease; marked failed by the sweeper",
    )
    for pk in dead:
        audit_record(actor=None, action="job.failed", obj=JobRun.objects.get(pk=pk), job_run_id=pk)
    for project, view in orphaned_views:
        _recover_view_state(project=project, view=view)
    requeued, expired = _lost_messages_sweep(now)
    return {"job_runs": jobs, "sync_runs": syncs, "requeued": requeued, "never_picked_up": expired}


def _lost_messages_sweep(now: Any) -> tuple[int, int]:
    """Runs still queued long after they were published lost their message (the broker restarted empty):
    publish each once more, and fail those still queued a bound after that. The run's progress message says
    which happened. (This runs on a worker, so a worker was alive to take them.)"""
    bound = timedelta(seconds=settings.JOBS_REQUEUE_AFTER_SECONDS)
    lost = JobRun.objects.filter(status=JobRun.Status.QUEUED, requeued_at__isnull=True, created_at__lt=now - bound)
    requeued = 0
    for run in lost:
        moved = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED, requeued_at__isnull=True).update(
            requeued_at=now,
            progress_message=f"queued again at {now:%H:%M:%S} UTC: its queue message was lost",
        )
        if moved:
            current_app.send_task(RUN_TASK, kwargs={"job_run_id": run.pk})
            requeued += 1
    expired = list(
        JobRun.objects.filter(status=JobRun.Status.QUEUED, requeued_at__lt=now - bound).values_list("pk", flat=True)
    )
    failed = JobRun.objects.filter(pk__in=expired, status=JobRun.Status.QUEUED).update(
        status=JobRun.Status.FAILED,
        finished_at=now,
        error="no worker picked the run up, even after it was queued again; start it anew",
    )
    for pk in expired:
        audit_record(actor=None, action="job.failed", obj=JobRun.objects.get(pk=pk), job_run_id=pk)
    return requeued, failed


def _recover_view_state(*, project: str, view: str) -> None:
    """A dead run left its view in Feast's MATERIALIZING state (not served): put it back."""
    for repo in gateway.governed_repos():
        try:
            if gateway.registry_location(repo).project != project:
                continue
            state = gateway.materialization_recover(repo, view=view)
        except PortalError as exc:  # the registry may be down: the next sweep retries
            logger.warning("could not recover %s/%s from MATERIALIZING: %s", project, view, exc)
            return
        if state:
            logger.info("%s/%s: MATERIALIZING -> %s after its worker died", project, view, state)
        return
