"""The one feature-value rule (catalog.permissions): previews, skew examples, statistics' top values and
dataset rows are visible to operators, to members of a team owning what they come from, and to whoever
asked; asking needs the proposer role or membership of an owning team."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject, Team
from catalog.services.sync import registry_sync
from jobs.models import JobRun

PROJECT = "employee_attrition"
PREVIEW = {"feature_service": "attrition_model_v1", "entities": {"employee_id": [100]}}


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef, db: None) -> feast_gateway.RepoRef:
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    return demo_repo


def owning_team() -> Team:
    view = CatalogObject.objects.get(project__name=PROJECT, kind="feature_view", name="employee_features")
    assert view.team is not None
    return view.team


def test_a_viewer_outside_the_owning_teams_cannot_ask_for_values(client: Client, viewer: Any, synced: Any) -> None:
    client.force_login(viewer)
    api = client.post(f"/api/v1/projects/{PROJECT}/online-preview/", PREVIEW, content_type="application/json")
    assert api.status_code == 403, api.content
    assert "proposer role, or membership of a team" in api.json()["error"]["message"]
    jobs = client.post(
        "/api/v1/jobs/", {"kind": "preview", "project": PROJECT, **PREVIEW}, content_type="application/json"
    )
    assert jobs.status_code == 403
    form = client.post(
        "/jobs/preview/", {"target": f"service:{PROJECT}/attrition_model_v1", "entities": "employee_id: 100"}
    )
    assert form.status_code == 400 and b"proposer role" in form.content
    assert not JobRun.objects.exists()
    # a viewer in a team that owns the service's views may
    owning_team().members.add(viewer)
    ok = client.post(f"/api/v1/projects/{PROJECT}/online-preview/?async=true", PREVIEW, content_type="application/json")
    assert ok.status_code == 202, ok.content


def _finished(kind: str, result: dict[str, Any], started_by: Any) -> JobRun:
    """A finished job as its worker leaves it (the rule is about who sees the stored result)."""
    return JobRun.objects.create(
        kind=kind,
        params={"project": PROJECT, "view": "employee_features"},
        status=JobRun.Status.SUCCEEDED,
        result=result,
        started_by=started_by,
    )


SKEW = {
    "project": PROJECT,
    "view": "employee_features",
    "as_of": "now",
    "sampled": 1,
    "mismatch_rate": 1.0,
    "features": [
        {
            "feature": "employee_features:salary_band",
            "compared": 1,
            "mismatches": 1,
            "missing_online": 0,
            "mismatch_rate": 1.0,
            "examples": [
                {"entity": {"employee_id": 4242}, "online": "band-X", "offline": "band-Y", "status": "PRESENT"}
            ],
        }
    ],
}
STATS = {
    "project": PROJECT,
    "view": "employee_features",
    "rows": 3,
    "features": [
        {
            "feature": "salary_band",
            "dtype": "String",
            "count": 3,
            "null_rate": 0.0,
            "distinct": 2,
            "histogram": {"values": ["band-secret"], "counts": [3.0]},
        },
        {
            "feature": "tenure",
            "dtype": "Float32",
            "count": 3,
            "null_rate": 0.0,
            "distinct": 3,
            "mean": 2.0,
            "min": 1.0,
            "max": 3.0,
            "histogram": {"edges": [1.0, 3.0], "counts": [3.0]},
        },
    ],
}


def test_skew_examples_and_top_values_follow_the_rule(client: Client, viewer: Any, operator: Any, synced: Any) -> None:
    skew = _finished(JobRun.Kind.SKEW, SKEW, operator)
    stats = _finished(JobRun.Kind.STATS, STATS, operator)
    client.force_login(viewer)
    page = client.get(f"/jobs/{skew.pk}/").content.decode()
    assert "4242" not in page and "band-X" not in page and 'id="values-hidden"' in page
    assert 'id="skew-rate">1.0<' in page  # the rates stay
    api = client.get(f"/api/v1/jobs/{skew.pk}/").json()
    assert api["result"]["values_hidden"] is True and api["result"]["features"][0]["examples"] == []
    listed = client.get("/api/v1/jobs/", {"kind": "skew"}).json()["results"]
    assert listed[0]["result"]["features"][0]["examples"] == []
    page = client.get(f"/jobs/{stats.pk}/").content.decode()
    assert "band-secret" not in page and 'id="values-hidden"' in page
    ledger = client.get(f"/jobs/ledger/{PROJECT}/employee_features/")
    assert ledger.status_code == 200 and "band-secret" not in ledger.content.decode()
    feature_page = client.get(f"/projects/{PROJECT}/feature-views/employee_features/features/salary_band/")
    assert feature_page.status_code == 200 and "band-secret" not in feature_page.content.decode()
    stats_api = client.get(f"/api/v1/jobs/{stats.pk}/").json()["result"]["features"]
    assert stats_api[0]["histogram"] == {} and stats_api[1]["histogram"]["counts"] == [3.0]  # numeric stays

    owning_team().members.add(viewer)
    page = client.get(f"/jobs/{skew.pk}/").content.decode()
    assert "4242" in page and "band-X" in page and 'id="values-hidden"' not in page
    assert "band-secret" in client.get(f"/jobs/{stats.pk}/").content.decode()
