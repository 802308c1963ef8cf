"""The offline/online skew check reports a deliberately skewed online value (real worker, real Redis)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from jobs.services.skew import skew_check_start
from tests import environment as env
from tests.conftest import wait_for_terminal

PROJECT = "employee_attrition"
DATA_END = env.DATA_END
FEATURES = ["tenure", "salary_band", "overtime", "promotion_stagnation", "career_velocity", "overall_satisfaction"]


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef, transactional_db: None) -> feast_gateway.RepoRef:
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    return demo_repo


@pytest.mark.clock
def test_a_planted_online_value_is_reported_as_skew(
    client: Client, operator: Any, synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    df = pd.read_parquet(env.DEMO_REPO / "data" / "employee_attrition.parquet")
    df = df[df.event_timestamp < DATA_END].sort_values("event_timestamp")
    latest = df.drop_duplicates("employee_id", keep="last")
    victim = latest[latest.is_active == 1].iloc[3]
    planted = {f: victim[f] for f in FEATURES}
    planted["tenure"] = 999.0
    feast_gateway.online_write_rows(
        synced,
        view="employee_features",
        rows=[
            {
                "employee_id": int(victim.employee_id),
                **planted,
                "event_timestamp": victim.event_timestamp + timedelta(seconds=1),  # newer: the write wins
                "created": victim.created + timedelta(seconds=1),
            }
        ],
    )
    client.force_login(operator)
    response = client.post(
        "/api/v1/jobs/",
        {
            "kind": "skew",
            "project": PROJECT,
            "view": "employee_features",
            "sample": 10000,
            "as_of": DATA_END.isoformat(),
        },
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    run = wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    by_feature = {f["feature"]: f for f in run.result["features"]}
    assert run.result["sampled"] == int(
        (latest[latest.event_timestamp >= DATA_END - timedelta(days=7)].is_active == 1).sum()
    )
    tenure = by_feature["employee_features:tenure"]
    assert tenure["mismatches"] == 1 and tenure["compared"] == run.result["sampled"]
    assert tenure["examples"][0]["entity"] == {"employee_id": int(victim.employee_id)}
    assert tenure["examples"][0]["online"] == pytest.approx(999.0)
    assert tenure["examples"][0]["offline"] == pytest.approx(float(victim.tenure), rel=1e-6)
    for name in FEATURES[1:]:
        assert by_feature[f"employee_features:{name}"]["mismatches"] == 0, by_feature[f"employee_features:{name}"]
    page = client.get(f"/jobs/{run.pk}/").content.decode()
    assert 'id="skew-chart"' in page and 'data-feature="employee_features:tenure"' in page


def test_bad_skew_requests_change_nothing(operator: Any, viewer: Any, synced: Any) -> None:
    with pytest.raises(ObjectNotFound):
        skew_check_start(actor=operator, project=PROJECT, view="nope", trigger="api")
    with pytest.raises(InvalidInput, match="not materialized online"):
        skew_check_start(actor=operator, project=PROJECT, view="employee_risk_signals", trigger="api")
    with pytest.raises(InvalidInput, match="sample"):
        skew_check_start(actor=operator, project=PROJECT, view="employee_features", sample=0, trigger="api")
    with pytest.raises(NotPermitted):
        skew_check_start(actor=viewer, project=PROJECT, view="employee_features", trigger="api")
    assert not JobRun.objects.exists()


def test_the_ledger_buttons_queue_skew_and_statistics_jobs_for_operators(
    client: Client, viewer: Any, operator: Any, synced: Any
) -> None:
    base = f"/jobs/ledger/{PROJECT}/employee_features"
    client.force_login(viewer)
    target = {"project": PROJECT, "view": "employee_features"}
    assert client.post("/jobs/start/skew/", {**target, "sample": "10"}).status_code == 403
    assert client.post("/jobs/start/stats/", target).status_code == 403
    page = client.get(f"{base}/")
    assert page.status_code == 200 and b"ledger-skew" not in page.content  # no buttons for viewers
    client.force_login(operator)
    assert b"ledger-skew" in client.get(f"{base}/").content
    skew = client.post("/jobs/start/skew/", {**target, "sample": "10"})
    stats = client.post("/jobs/start/stats/", target)
    runs = {r.kind: r for r in JobRun.objects.all()}
    assert skew["Location"] == f"/jobs/{runs['skew'].pk}/" and runs["skew"].params["sample"] == 10
    assert stats["Location"] == f"/jobs/{runs['stats'].pk}/" and runs["stats"].params["view"] == "employee_features"
    assert (runs["skew"].trigger, runs["stats"].trigger) == ("button", "button")  # started in the browser
    bad = client.post("/jobs/start/skew/", {**target, "sample": "0", "next": f"{base}/"}, follow=True)
    assert b"Not started" in bad.content and JobRun.objects.count() == 2
    assert bad.redirect_chain[-1][0] == f"{base}/"  # back to the page the button was on
    typo = client.post("/jobs/start/skew/", {**target, "sample": "ten", "next": "https://evil.example/"}, follow=True)
    assert b"a whole number" in typo.content and typo.redirect_chain[-1][0] == "/jobs/"  # never off-site
    assert client.post("/jobs/start/apply/", target).status_code == 404  # started from its change request only
    assert client.post("/jobs/start/nonsense/", target).status_code == 404
    assert JobRun.objects.count() == 2


def test_the_preview_form_accepts_a_feature_view(
    client: Client, proposer: Any, synced: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(proposer)
    response = client.post(
        "/jobs/preview/", {"target": f"view:{PROJECT}/department_features", "entities": '{"department_id": [1, 2]}'}
    )
    assert response.status_code == 302
    run = JobRun.objects.get(kind="preview")
    assert run.params["features"] == [
        "department_features:headcount",
        "department_features:attrition_rate_90d",
        "department_features:avg_satisfaction",
    ]
    assert run.params["entities"] == {"department_id": [1, 2]}
    assert client.post("/jobs/preview/", {"target": "view:nope/nope", "entities": "x: 1"}).status_code == 400
