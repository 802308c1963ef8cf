"""Registry sync as a job: the sync-now button, a real Celery worker, the beat schedule, the sweeper."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from catalog import feast_gateway
from catalog.models import AuditEvent, Project, SyncRun
from jobs.models import JobRun
from jobs.services import registry_sync_start, stale_runs_sweep
from tests.conftest import wait_for_terminal

ROOT = Path(__file__).resolve().parents[2]


def test_sync_now_button_runs_on_a_real_worker(
    client: Client, operator: Any, demo_repo: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    client.force_login(operator)
    response = client.post("/jobs/start/sync/")
    assert response.status_code == 302
    run = wait_for_terminal(JobRun.objects.get(kind="sync"))
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    assert run.started_by == operator and run.celery_task_id
    assert run.result["sync_runs"][0]["added"] == 15
    assert Project.objects.filter(name="employee_attrition").exists()
    assert AuditEvent.objects.filter(action="registry.sync_started", actor=operator).exists()


@pytest.mark.django_db
def test_only_operators_may_start_a_sync(client: Client, viewer: Any, proposer: Any) -> None:
    for user in (viewer, proposer):
        client.force_login(user)
        assert client.post("/jobs/start/sync/").status_code == 403
    assert not JobRun.objects.exists()


def test_anonymous_users_are_sent_to_login(client: Client, db: None) -> None:
    response = client.post("/jobs/start/sync/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_sync_start_creates_the_run_before_enqueueing_after_commit(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        run = registry_sync_start(actor=operator, project="employee_attrition")
        assert JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).exists()
    assert len(callbacks) == 1
    assert run.params == {"project": "employee_attrition", "force": False}


@pytest.mark.django_db
def test_the_sweeper_fails_runs_whose_worker_died() -> None:
    stale = JobRun.objects.create(
        kind="sync", status=JobRun.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    alive = JobRun.objects.create(kind="sync", status=JobRun.Status.RUNNING, heartbeat_at=timezone.now())
    old_sync = SyncRun.objects.create(registry_key="x", status=SyncRun.Status.RUNNING)
    SyncRun.objects.filter(pk=old_sync.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert stale_runs_sweep() == {"job_runs": 1, "sync_runs": 1, "requeued": 0, "never_picked_up": 0}
    stale.refresh_from_db()
    alive.refresh_from_db()
    assert stale.status == JobRun.Status.FAILED and "no heartbeat" in stale.error
    assert alive.status == JobRun.Status.RUNNING


def test_beat_schedules_the_sync_at_the_configured_interval() -> None:
    env = {**os.environ, "CATALOG_SYNC_INTERVAL_SECONDS": "60"}
    code = "from django.conf import settings as s; e = s.CELERY_BEAT_SCHEDULE['catalog-sync-registry']; print(e['task'], e['schedule'])"
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[-2:] == ["jobs.registry_sync", "60.0"]


@pytest.mark.django_db(transaction=True)
def test_a_job_that_dies_of_a_database_error_records_that_error() -> None:
    """Its database connection killed mid-job (as by a failover): the run says so, not 'no heartbeat'."""
    from django.db import DatabaseError, connection

    from jobs.services.core import job_run_execute

    run = JobRun.objects.create(kind=JobRun.Kind.STATS, params={})

    def body(_: JobRun) -> dict[str, object]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return {}

    with pytest.raises(DatabaseError):
        job_run_execute(job_run_id=run.pk, kind=run.kind, params={}, celery_task_id="t", body=body)
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED
    assert "terminating connection" in run.error and "heartbeat" not in run.error


def test_a_job_whose_queue_message_was_lost_is_queued_again_then_failed(
    demo_repo: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    """A run committed as queued whose message never reached the broker (as after a Redis restart): the sweeper
    publishes it again and a real worker runs it; one still queued a bound after that is failed, saying why."""
    lost = JobRun.objects.create(kind=JobRun.Kind.SYNC, params={"project": None, "force": True}, trigger="api")
    JobRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    swept = stale_runs_sweep()
    assert (swept["requeued"], swept["never_picked_up"]) == (1, 0)
    lost.refresh_from_db()
    assert lost.requeued_at is not None and "its queue message was lost" in lost.progress_message
    assert wait_for_terminal(lost).status == JobRun.Status.SUCCEEDED, lost.error

    stuck = JobRun.objects.create(kind=JobRun.Kind.SYNC, params={}, trigger="api")
    JobRun.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - timedelta(hours=3), requeued_at=timezone.now() - timedelta(hours=2)
    )
    assert stale_runs_sweep()["never_picked_up"] == 1
    stuck.refresh_from_db()
    assert stuck.status == JobRun.Status.FAILED and "even after it was queued again" in stuck.error
    assert AuditEvent.objects.filter(action="job.failed", object_id=str(stuck.pk)).exists()
