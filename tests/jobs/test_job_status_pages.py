"""A job page reads as what happened: a failed run is red with a readable error, a finished one is done,
a half-done one is not, and its tables scroll inside their cards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import JobRun

pytestmark = pytest.mark.django_db

SCHEMA_ERROR = (
    "the dataset's columns do not match the contract: expected employee_features__tenure: float, got double\n"
    "employee_id: int64\nevent_timestamp: timestamp[us, tz=UTC]\nemployee_features__tenure: double\n"
    '-- schema metadata --\npandas: \'{"index_columns": [], "columns": [...]}\''
)


def _half_done(status: str, operator: Any, **extra: Any) -> JobRun:
    """A training dataset run that got through the first of its two steps."""
    return JobRun.objects.create(
        kind="training_dataset",
        status=status,
        progress_done=1,
        progress_total=2,
        progress_message="writing the contract and the schema",
        started_by=operator,
        **extra,
    )


def test_a_failed_job_is_red_with_its_first_line_up_front_and_the_rest_folded(client: Client, operator: Any) -> None:
    run = _half_done(JobRun.Status.FAILED, operator, error=SCHEMA_ERROR)
    client.force_login(operator)
    page = client.get(f"/jobs/{run.pk}/").content.decode()
    assert '<progress id="job-progress" data-job-status="failed"' in page  # red: static/jobs.css
    assert "stopped at 1/2" in page and "Failed while writing the contract and the schema" in page
    headline = page.split('id="job-error-headline">')[1].split("</strong>")[0]
    assert (
        headline
        == "the dataset&#x27;s columns do not match the contract: expected employee_features__tenure: float, got double"
    )
    details = page.split("<details><summary>Details</summary>")[1].split("</details>")[0]
    assert "-- schema metadata --" in details and "-- schema metadata --" not in headline
    listed = client.get("/jobs/").content.decode().split(f'data-job-id="{run.pk}"')[1].split("</tr>")[0]
    assert "do not match the contract" in listed and "schema metadata" not in listed


def test_a_long_one_line_error_is_cut_to_a_readable_headline(client: Client, operator: Any) -> None:
    dump = "Feast refused the schema: " + ", ".join(f"column_{i}: Float32" for i in range(60))
    run = JobRun.objects.create(kind="materialize", status=JobRun.Status.FAILED, error=dump, started_by=operator)
    client.force_login(operator)
    page = client.get(f"/jobs/{run.pk}/status/").content.decode()
    headline = page.split('id="job-error-headline">')[1].split("</strong>")[0]
    assert headline.startswith("Feast refused the schema") and len(headline) <= 210 and headline.endswith("…")
    assert "column_59: Float32" in page.split("<summary>Details</summary>")[1]


def test_a_succeeded_job_reads_done_and_a_running_one_does_not(client: Client, operator: Any) -> None:
    done = _half_done(JobRun.Status.SUCCEEDED, operator)
    client.force_login(operator)
    page = client.get(f"/jobs/{done.pk}/").content.decode()
    assert "done · 2/2" in page and "1/2" not in page
    assert "writing the contract and the schema" not in page  # a step still under way is not how it ended
    assert 'value="100"' in page and 'data-job-status="succeeded"' in page
    listed = client.get("/jobs/").content.decode().split(f'data-job-id="{done.pk}"')[1].split("</tr>")[0]
    assert "2/2" in listed and "writing the contract" not in listed
    running = _half_done(JobRun.Status.RUNNING, operator)
    page = client.get(f"/jobs/{running.pk}/").content.decode()
    assert "50% · 1/2" in page and "writing the contract and the schema" in page and "done ·" not in page


def test_the_views_table_scrolls_inside_its_card(client: Client, operator: Any) -> None:
    run = JobRun.objects.create(kind="materialize", status=JobRun.Status.FAILED, error="boom", started_by=operator)
    run.materializations.create(
        project="p" * 60,
        view="v" * 80,
        start=timezone.now() - timedelta(days=2),
        end=timezone.now() - timedelta(days=1),
        status="failed",
        error="x" * 500,
    )
    client.force_login(operator)
    page = client.get(f"/jobs/{run.pk}/").content.decode()
    assert '<div class="scroll"><table class="table" id="materialization-records">' in page
