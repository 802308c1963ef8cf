"""Feature statistics: a job on a real worker describing a view's offline rows."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from jobs.services.stats import feature_statistics_start
from tests import environment as env

PROJECT = "employee_attrition"
DATA_END = env.DATA_END
START = DATA_END - timedelta(days=180)


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef, transactional_db: None) -> feast_gateway.RepoRef:
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    return demo_repo


def test_statistics_match_the_offline_data(
    client: Client, operator: Any, synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    client.force_login(operator)
    response = client.post(
        "/api/v1/jobs/",
        {
            "kind": "stats",
            "project": PROJECT,
            "view": "employee_features",
            "start": START.isoformat(),
            "end": DATA_END.isoformat(),
        },
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    run = JobRun.objects.get(pk=response.json()["id"])
    deadline = time.monotonic() + 120
    while not run.is_terminal and time.monotonic() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    df = pd.read_parquet(env.DEMO_REPO / "data" / "employee_attrition.parquet")
    df = df[(df.event_timestamp >= START) & (df.event_timestamp <= DATA_END)]
    assert run.result["rows"] == len(df)
    stats = {f["feature"]: f for f in run.result["features"]}
    assert list(stats) == [
        "tenure",
        "salary_band",
        "overtime",
        "promotion_stagnation",
        "career_velocity",
        "overall_satisfaction",
    ]
    tenure = stats["tenure"]
    assert tenure["count"] == len(df) and tenure["nulls"] == 0 and tenure["null_rate"] == 0
    assert tenure["min"] == pytest.approx(float(df.tenure.min()), rel=1e-6)
    assert tenure["max"] == pytest.approx(float(df.tenure.max()), rel=1e-6)
    assert tenure["mean"] == pytest.approx(float(df.tenure.astype("float64").mean()), rel=1e-6)
    assert sum(tenure["histogram"]["counts"]) == len(df)
    assert stats["salary_band"]["distinct"] == df.salary_band.nunique()
    assert stats["overtime"]["distinct"] == 2 and len(stats["overtime"]["histogram"]["counts"]) == 2
    page = client.get(f"/jobs/ledger/{PROJECT}/employee_features/").content.decode()
    assert 'id="feature-stats"' in page and 'id="stats-chart-tenure"' in page


def test_bad_statistics_requests_change_nothing(operator: Any, viewer: Any, synced: Any) -> None:
    with pytest.raises(ObjectNotFound):
        feature_statistics_start(actor=operator, project=PROJECT, view="nope", trigger="api")
    with pytest.raises(InvalidInput, match="on-demand"):
        feature_statistics_start(actor=operator, project=PROJECT, view="employee_risk_signals", trigger="api")
    with pytest.raises(InvalidInput, match="before end"):
        feature_statistics_start(
            actor=operator,
            project=PROJECT,
            view="employee_features",
            start=(DATA_END - timedelta(days=30)).isoformat(),
            end=(DATA_END - timedelta(days=150)).isoformat(),
            trigger="api",
        )
    with pytest.raises(NotPermitted):
        feature_statistics_start(actor=viewer, project=PROJECT, view="employee_features", trigger="api")
    assert not JobRun.objects.exists()


def test_template_tags_show_operations_data_on_any_page(operator: Any, synced: Any) -> None:
    from django.template import Context, Template

    from jobs.models import MaterializationRecord

    run = JobRun.objects.create(
        kind="stats",
        status=JobRun.Status.SUCCEEDED,
        params={"project": PROJECT, "view": "employee_features"},
        result={
            "start": (DATA_END - timedelta(days=31)).isoformat(),
            "end": DATA_END.isoformat(),
            "features": [
                {
                    "feature": "tenure",
                    "dtype": "Float32",
                    "count": 10,
                    "nulls": 1,
                    "null_rate": 0.1,
                    "distinct": 9,
                    "min": 0.5,
                    "max": 9.0,
                    "mean": 4.2,
                    "histogram": {"edges": [0.5, 4.75, 9.0], "counts": [5.0, 4.0]},
                }
            ],
        },
    )
    MaterializationRecord.objects.create(
        job_run=run, project=PROJECT, view="employee_features", start=START, end=DATA_END, status="failed", error="boom"
    )
    html = Template(
        "{% load jobs_extras %}{% view_materialization p 'employee_features' %}{% freshness_panel %}"
        "{% feature_statistics p 'employee_features' 'tenure' %}{% feature_statistics p 'employee_features' 'nope' %}"
    ).render(Context({"p": PROJECT, "user": operator}))
    assert 'data-materialization="failing"' in html and "materialization failing" in html
    assert 'id="freshness-panel"' in html and 'data-freshness-count="stale"' in html
    assert 'id="stats-chart-tenure"' in html and "null rate 0.1000" in html
    assert html.count('id="feature-statistics"') == 1  # an unknown feature renders nothing
