"""A worker SIGKILLed in the middle of a materialization: the sweeper fails the run within 60 s."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from catalog import feast_gateway
from catalog.services.sync import registry_sync
from jobs.models import JobRun, MaterializationRecord, ViewLock
from jobs.services import stale_runs_sweep
from jobs.services.materialization import materialization_start
from tests import environment as env
from tests.jobs.conftest import worker_process

DATA_END = env.DATA_END


@pytest.mark.slow
def test_a_sigkilled_worker_leaves_no_run_running_forever(
    demo_repo: feast_gateway.RepoRef, operator: Any, transactional_db: None, settings: Any
) -> None:
    settings.JOBS_STALE_AFTER_SECONDS = 3
    assert registry_sync(project="employee_attrition", trigger="test", force=True)[0].status == "succeeded"
    db = connection.settings_dict
    environ = {
        **os.environ,
        # the worker process must use this test's database and the same quick heartbeat
        "DATABASE_URL": f"{env.PG}/{db['NAME']}",
        "JOBS_STALE_AFTER_SECONDS": "3",
    }
    worker = worker_process(environ)
    try:
        run = materialization_start(
            actor=operator,
            project="employee_attrition",
            views=["employee_features"],
            mode="range",
            start=(DATA_END - timedelta(days=365)).isoformat(),
            end=DATA_END.isoformat(),
            chunk_hours=1,  # ~8760 short chunks: the kill lands mid-run
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status == JobRun.Status.RUNNING and run.progress_done >= 3:
                break
            assert worker.poll() is None, "the worker exited on its own"
            time.sleep(0.2)
        else:
            raise AssertionError(f"the run never got going: {run.status} {run.progress_message}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 60:
            stale_runs_sweep()
            run.refresh_from_db()
            if run.is_terminal:
                break
            time.sleep(1)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert run.status == JobRun.Status.FAILED, f"still {run.status} 60 s after the kill"
    assert "no heartbeat" in run.error
    record = MaterializationRecord.objects.get(job_run=run)
    assert record.status == MaterializationRecord.Status.FAILED and record.chunks >= 3
    assert not ViewLock.objects.filter(view="employee_features", job_run__isnull=False).exists()
    # the view is not left in Feast's MATERIALIZING state (which Feast refuses to serve)
    fv = feast_gateway.materialization_targets(demo_repo, views=["employee_features"], start=DATA_END - timedelta(1))
    assert fv and fv[0].state == "AVAILABLE_ONLINE"
