"""GET /metrics: the Prometheus families the portal promises, with values from the real database.

The catalog is synced from the demo SQL registry (materialized by the real `feast` CLI in the
registry template), so materialization lag and TTL come from Feast's own bookkeeping.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from catalog import feast_gateway
from catalog.models import CatalogObject, SyncRun
from catalog.services.sync import registry_sync
from jobs.models import JobRun, MaterializationRecord

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "k8s" / "monitoring" / "prometheusrule.yaml"

# Every family /metrics must expose (the list), by exposition name.
FAMILIES = {
    "portal_http_request_duration_seconds": "histogram",
    "portal_job_runs": "gauge",
    "portal_job_run_duration_seconds": "summary",
    "portal_job_run_last_finished_timestamp_seconds": "gauge",
    "portal_sync_runs": "gauge",
    "portal_sync_duration_seconds": "summary",
    "portal_sync_last_duration_seconds": "gauge",
    "portal_sync_last_success_timestamp_seconds": "gauge",
    "portal_sync_out_of_band_changes": "counter",
    "portal_materialization_lag_seconds": "gauge",
    "portal_feature_view_ttl_seconds": "gauge",
    "portal_feature_view_materialized": "gauge",
    "portal_materialization_rows": "counter",
    "portal_materialization_duration_seconds": "summary",
    "portal_change_requests": "gauge",
    "portal_metrics_collector_up": "gauge",
}


def _scrape(client: Client, **headers: Any) -> tuple[dict[str, str], list[Sample]]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    types: dict[str, str] = {}
    samples: list[Sample] = []
    for family in text_string_to_metric_families(response.content.decode()):
        types[family.name] = family.type
        samples.extend(family.samples)
    return types, samples


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return float(found[0])


@pytest.fixture
def portal_state(db: None, demo_repo: feast_gateway.RepoRef) -> dict[str, Any]:
    """A synced catalog, a few job runs and two materialization records."""
    runs = registry_sync()
    assert [r.status for r in runs] == [SyncRun.Status.SUCCEEDED]
    SyncRun.objects.filter(pk=runs[0].pk).update(out_of_band=3)
    now = timezone.now()
    made = [
        ("materialize", "succeeded", now - timedelta(hours=3), 120),
        ("materialize", "failed", now - timedelta(hours=1), 30),
        ("materialize", "failed", now - timedelta(minutes=30), 45),
        ("sync", "succeeded", now - timedelta(minutes=5), 2),
    ]
    for kind, status, finished, seconds in made:
        JobRun.objects.create(
            kind=kind, status=status, started_at=finished - timedelta(seconds=seconds), finished_at=finished
        )
    JobRun.objects.create(kind="apply", status="queued")
    run = JobRun.objects.filter(kind="materialize", status="succeeded").get()
    for rows in (100, 250):
        MaterializationRecord.objects.create(
            job_run=run,
            project="employee_attrition",
            view="employee_features",
            start=now - timedelta(days=2),
            end=now - timedelta(days=1),
            status="succeeded",
            rows_written=rows,
            duration_seconds=1.5,
            finished_at=now,
        )
    return {"last_failed": now - timedelta(minutes=30)}


@pytest.mark.clock
def test_metrics_expose_every_family_with_values_from_the_database(
    client: Client, portal_state: dict[str, Any], settings: Any
) -> None:
    settings.PORTAL_METRICS_TOKEN = ""
    assert client.get("/healthz").status_code == 200  # observed by the middleware
    types, samples = _scrape(client)  # the test client's REMOTE_ADDR is 127.0.0.1

    missing = {name: kind for name, kind in FAMILIES.items() if types.get(name) != kind}
    assert not missing, f"families missing or of the wrong type: {missing}"

    # Request latency, labelled by the URL route (not the raw path).
    assert _value(samples, "portal_http_request_duration_seconds_count", route="/healthz", status="200") >= 1

    # JobRuns by kind and status, and their durations.
    assert _value(samples, "portal_job_runs", kind="materialize", status="failed") == 2
    assert _value(samples, "portal_job_runs", kind="apply", status="queued") == 1
    assert _value(samples, "portal_job_run_duration_seconds_count", kind="materialize", status="failed") == 2
    assert _value(samples, "portal_job_run_duration_seconds_sum", kind="materialize", status="failed") == 75
    last_failed = _value(samples, "portal_job_run_last_finished_timestamp_seconds", kind="materialize", status="failed")
    assert last_failed == pytest.approx(portal_state["last_failed"].timestamp(), abs=0.01)

    # Sync duration and out-of-band changes.
    sync = SyncRun.objects.get()
    assert _value(samples, "portal_sync_runs", status="succeeded") == 1
    assert _value(samples, "portal_sync_duration_seconds_count", status="succeeded") == 1
    assert _value(samples, "portal_sync_duration_seconds_sum", status="succeeded") == sync.duration_ms / 1000  # type: ignore[operator]
    assert _value(samples, "portal_sync_out_of_band_changes_total") == 3

    # Lag per online view, from the last materialized interval Feast recorded.
    view = CatalogObject.objects.get(kind="feature_view", name="employee_features")
    assert view.last_materialized_end is not None
    lag = _value(samples, "portal_materialization_lag_seconds", project="employee_attrition", view="employee_features")
    expected = (timezone.now() - view.last_materialized_end).total_seconds()
    assert max(0.0, expected - 120) <= lag <= max(0.0, expected)  # an interval ending in the future: lag 0
    assert _value(samples, "portal_feature_view_ttl_seconds", view="employee_features") == 7 * 86400
    assert _value(samples, "portal_feature_view_materialized", view="employee_features") == 1
    lagged = {s.labels["view"] for s in samples if s.name == "portal_materialization_lag_seconds"}
    assert "employee_risk_signals" not in lagged  # on-demand views are never materialized

    assert _value(samples, "portal_materialization_rows_total", view="employee_features") == 350
    assert _value(samples, "portal_materialization_duration_seconds_count", status="succeeded") == 2

    # Every section's query worked.
    assert {s.labels["section"]: s.value for s in samples if s.name == "portal_metrics_collector_up"} == {
        "job_run": 1,
        "sync": 1,
        "materialization": 1,
        "materialization_ledger": 1,
        "change_request": 1,
    }


def test_metrics_need_the_bearer_token_when_one_is_set(client: Client, db: None, settings: Any) -> None:
    settings.PORTAL_METRICS_TOKEN = "s3cret-token"
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token").status_code == 401
    types, _ = _scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert types["portal_job_runs"] == "gauge"


def test_metrics_without_a_token_answer_only_loopback_clients(client: Client, db: None, settings: Any) -> None:
    settings.PORTAL_METRICS_TOKEN = ""
    refused = client.get("/metrics", REMOTE_ADDR="10.0.3.7")
    assert refused.status_code == 403
    assert b"PORTAL_METRICS_TOKEN" in refused.content
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.post("/metrics").status_code in {403, 405}


def test_example_alert_rules_use_only_metrics_the_portal_exposes(client: Client, db: None, settings: Any) -> None:
    """k8s/monitoring/prometheusrule.yaml: the four alerts of the issue, on real portal metric names."""
    settings.PORTAL_METRICS_TOKEN = ""
    client.get("/healthz")
    types, samples = _scrape(client)
    exposed = set(types) | {s.name for s in samples}
    for name, kind in types.items():  # series names Prometheus derives from each family
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "summary": ["_count", "_sum"]}
        exposed |= {name + suffix for suffix in suffixes.get(kind, [])}

    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]}
    for required in (
        "FeatureMaterializationFailed",
        "FeatureViewStale",
        "RedisEvictingKeys",
        "FeatureServerP99LatencyHigh",
    ):
        assert required in alerts
    used = {m for expr in alerts.values() for m in re.findall(r"\bportal_[a-z0-9_]+", expr)}
    assert used, "the rules should use portal metrics"
    assert used <= exposed, f"rules use metrics /metrics does not expose: {sorted(used - exposed)}"
    assert "feast_feature_server_request_latency_seconds_bucket" in alerts["FeatureServerP99LatencyHigh"]
    assert "redis_evicted_keys_total" in alerts["RedisEvictingKeys"]
