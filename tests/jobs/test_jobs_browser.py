"""Browser journey: an operator starts a materialization and watches the progress bar reach done."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import feast_gateway
from catalog.services.sync import registry_sync
from jobs.models import JobRun, MaterializationRecord
from tests.browser_fixtures import login, shot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_an_operator_watches_a_materialization_finish(
    page: Any,
    live_server: Any,
    operator: Any,
    demo_repo: feast_gateway.RepoRef,
    celery_worker: Any,
) -> None:
    assert registry_sync(project="employee_attrition", trigger="test", force=True)[0].status == "succeeded"
    login(page, live_server.url, operator.username)
    page.click("nav.mainnav >> text=Jobs")
    page.wait_for_url(f"{live_server.url}/jobs/")
    page.select_option("#materialize-form select[name=views]", ["employee_attrition/employee_features"])
    page.click("#materialize-start")
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    # htmx polls the status partial every second until the run is terminal
    page.wait_for_selector('#job-status[data-job-status="succeeded"]', timeout=90_000)
    assert page.get_attribute("#job-progress", "value") == "100"
    assert page.inner_text("#materialization-records").count("employee_features") >= 1
    shot(page, "materialization-finished")
    run = JobRun.objects.get(kind="materialize")
    assert run.status == JobRun.Status.SUCCEEDED and run.started_by == operator
    assert MaterializationRecord.objects.get(job_run=run).status == "succeeded"
    page.click("#materialization-records a")  # the view's ledger
    page.wait_for_selector("#ledger-runs")
    assert "Succeeded" in page.inner_text("#ledger-runs")
