"""Materialization through a real worker: the filter, the ledger, the lock, preview in canonical order."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from catalog import feast_gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.feast_gateway import MaterializeFilterInvalid
from catalog.models import AuditEvent, CatalogObject, ObjectVersion
from catalog.services.sync import registry_sync
from jobs.models import JobRun, MaterializationRecord, ViewLock
from jobs.services.materialization import (
    VIEW_LOCK,
    materialization_params,
    materialization_start,
    view_lock_acquire,
)
from tests import environment as env
from tests import online
from tests.conftest import feast_keys, wait_for_terminal

PROJECT = "employee_attrition"
DATA_END = env.DATA_END
RANGE_START = DATA_END - timedelta(days=400)
# The portal refuses to materialize into the future: with the data moved months ahead (the clock reruns), the
# windows below end now (on the hour), else at the data's end.
MATERIALIZE_END = min(DATA_END, datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
V1_ORDER = online.V1_ORDER


def clear_online_store() -> int:
    """Delete every Feast key from the worker's Redis database; how many there were."""
    client = redis.Redis.from_url(settings.REDIS_URL.url)
    keys = feast_keys(client)
    if keys:
        client.delete(*keys)
    return len(keys)


def latest_rows() -> pd.DataFrame:
    """Each employee's latest snapshot in [RANGE_START, MATERIALIZE_END] from the offline parquet, by employee_id."""
    return online.latest_offline_rows(
        env.DEMO_REPO / "data" / "employee_attrition.parquet", "employee_id", RANGE_START, MATERIALIZE_END
    )


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef, transactional_db: None) -> feast_gateway.RepoRef:
    runs = registry_sync(project=PROJECT, trigger="test", force=True)
    assert runs[0].status == "succeeded", runs[0].error
    return demo_repo


@pytest.mark.clock
def test_materialize_through_the_api_applies_the_filter_and_preview_reads_canonical_order(
    client: Client, operator: Any, synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    assert clear_online_store() > 0  # the CLI materialization of the fixture wrote every employee
    latest = latest_rows()
    leavers = latest[latest.is_active == 0]
    all_rows = pd.read_parquet(env.DEMO_REPO / "data" / "employee_attrition.parquet")
    # a leaver with earlier, active snapshots in the range: chunks before the leaving one hold them
    earlier_active = all_rows[(all_rows.is_active == 1) & (all_rows.event_timestamp >= RANGE_START)]
    leaver = int(leavers[leavers.index.isin(earlier_active.employee_id)].index[0])
    active_id = online.active_employee(latest, 0)
    active = latest.loc[active_id]
    client.force_login(operator)

    response = client.post(
        "/api/v1/jobs/",
        {
            "kind": "materialize",
            "project": PROJECT,
            "views": ["employee_features"],
            "mode": "range",
            "start": RANGE_START.isoformat(),
            "end": MATERIALIZE_END.isoformat(),
            "chunk_hours": 24 * 60,
        },
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    run = wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    chunks = math.ceil((MATERIALIZE_END - RANGE_START) / timedelta(days=60))  # 400 days: 7
    assert run.progress_done == run.progress_total == chunks
    record = MaterializationRecord.objects.get(job_run=run)
    assert record.status == MaterializationRecord.Status.SUCCEEDED
    assert record.chunks == chunks and record.filter == "is_active == 1"
    assert record.rows_filtered > 0 and record.rows_written > 0
    assert record.rows_per_second and record.duration_seconds > 0
    assert not ViewLock.objects.filter(view="employee_features", job_run__isnull=False).exists()
    # the run synced the catalog: the view's last materialized end is the run's end, intervals recorded
    view = CatalogObject.objects.get(project__name=PROJECT, kind="feature_view", name="employee_features")
    # (the fixture's own `feast materialize` may already have gone further: to the data's end, in the future)
    assert view.last_materialized_end == max(MATERIALIZE_END, DATA_END)
    assert any(i["end"].startswith(MATERIALIZE_END.strftime("%Y-%m-%d")) for i in view.materialization_intervals)
    assert view.feast_state == "AVAILABLE_ONLINE"
    assert AuditEvent.objects.filter(action="materialization.started", actor=operator).exists()
    # the intervals Feast wrote into the view's meta are not a definition change: no version (issue 16)
    assert not ObjectVersion.objects.filter(object=view, version__gt=1).exists()

    response = client.post(
        f"/api/v1/projects/{PROJECT}/online-preview/",
        {"feature_service": "attrition_model_v1", "entities": {"employee_id": [active_id, leaver]}},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["job"]["kind"] == "preview" and body["job"]["status"] == "succeeded"
    first, second = body["results"]
    assert first["entity"] == {"employee_id": active_id}
    assert [v["index"] for v in first["values"]] == list(range(6))
    assert [v["feature"] for v in first["values"]] == [f"employee_features:{f}" for f in V1_ORDER]
    # Exactly the offline row: its values and event timestamp; within the TTL as the real clock says.
    stamped = active.event_timestamp.to_pydatetime()
    within_ttl = datetime.now(UTC) - stamped <= online.EMPLOYEE_TTL
    for v, name in zip(first["values"], V1_ORDER, strict=True):
        assert v["status"] == "PRESENT", v
        assert v["value"] == pytest.approx(float(active[name]), rel=1e-6), v
        assert datetime.fromisoformat(v["event_timestamp"]) == stamped, v
        assert v["ttl_seconds"] == 7 * 24 * 3600 and v["within_ttl"] is within_ttl, v
    # the leaver's latest snapshot says is_active = 0: the filter kept them out of the online store
    assert {v["status"] for v in second["values"]} == {"NOT_FOUND"}
    assert "/get-online-features" in body["feature_server_curl"]

    ledger = client.get(f"/api/v1/projects/{PROJECT}/feature-views/employee_features/ledger/").json()
    assert ledger["last_success"]["rows_written"] == record.rows_written
    assert ledger["runs"][0]["status"] == "succeeded"
    page = client.get(f"/jobs/ledger/{PROJECT}/employee_features/")
    assert page.status_code == 200 and b"ledger-chart" in page.content and b"plotly-4.1.1" in page.content
    detail = client.get(f"/jobs/{run.pk}/")
    assert b'data-job-status="succeeded"' in detail.content and b'hx-trigger="every 1s"' not in detail.content


@pytest.mark.clock
def test_preview_keeps_the_requested_order_of_a_features_list(
    client: Client, proposer: Any, synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    client.force_login(proposer)
    features = ["employee_features:overall_satisfaction", "department_features:headcount", "employee_features:tenure"]
    response = client.post(
        f"/api/v1/projects/{PROJECT}/online-preview/?async=true",
        {"features": features, "entities": {"employee_id": [100], "department_id": [1]}},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    run = wait_for_terminal(JobRun.objects.get(pk=response.json()["job"]["id"]))
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    assert [v["feature"] for v in run.result["results"][0]["values"]] == features


def test_bad_preview_input_is_a_400_and_queues_nothing(client: Client, viewer: Any, synced: Any) -> None:
    client.force_login(viewer)
    url = f"/api/v1/projects/{PROJECT}/online-preview/"
    cases = [
        ({"feature_service": "nope", "entities": {"employee_id": [1]}}, "feature service nope is not"),
        ({"features": ["employee_features:nope"], "entities": {"employee_id": [1]}}, "no feature nope"),
        ({"feature_service": "attrition_model_v1", "entities": {"customer_id": [1]}}, "unknown entity key"),
        ({"feature_service": "attrition_model_v1", "entities": {"employee_id": []}}, "non-empty list"),
        ({"feature_service": "attrition_model_v1", "entities": {"employee_id": ["1\x00"]}}, "NUL character"),
        ({"feature_service": "attrition_model_v1", "features": ["employee_features:tenure"], "entities": {}}, "either"),
        ({"feature_service": "attrition_model_v1", "entities": {"employee_id": ["abc"]}}, "not a valid Int64"),
        ({"feature_service": "attrition_model_v1", "entities": {"employee_id": [1.5]}}, "not a valid Int64"),
        (
            {"feature_service": "attrition_model_v2", "entities": {"employee_id": [101], "department_id": [1]}},
            "missing request field months_since_last_review",
        ),
    ]
    for body, message in cases:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert message in response.json()["error"]["message"], response.json()
    assert (
        client.post("/api/v1/projects/nope/online-preview/", cases[0][0], content_type="application/json").status_code
        == 404
    )
    assert not JobRun.objects.exists()


def test_bad_materialization_requests_change_nothing(operator: Any, viewer: Any, synced: Any) -> None:
    with pytest.raises(ObjectNotFound):
        materialization_start(actor=operator, project=PROJECT, views=["nope"])
    with pytest.raises(InvalidInput, match="on-demand"):
        materialization_start(actor=operator, project=PROJECT, views=["employee_risk_signals"])
    with pytest.raises(InvalidInput, match="start must be before end"):
        materialization_start(
            actor=operator,
            project=PROJECT,
            mode="range",
            start=(DATA_END - timedelta(days=30)).isoformat(),
            end=(DATA_END - timedelta(days=60)).isoformat(),
        )
    with pytest.raises(InvalidInput, match="needs a start"):
        materialization_start(actor=operator, project=PROJECT, mode="range")
    # An empty end is now, as the form says ("End (default now)").
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    params = materialization_params(project=PROJECT, views=None, mode="range", start=yesterday, end="")
    assert abs(datetime.fromisoformat(params["end"]) - timezone.now()) < timedelta(minutes=1)
    with pytest.raises(NotPermitted):
        materialization_start(actor=viewer, project=PROJECT)
    assert not JobRun.objects.exists()


def test_api_materialize_needs_an_operator_and_valid_mode(
    client: Client, viewer: Any, operator: Any, synced: Any
) -> None:
    client.force_login(viewer)
    body = {"kind": "materialize", "project": PROJECT}
    assert client.post("/api/v1/jobs/", body, content_type="application/json").status_code == 403
    client.force_login(operator)
    bad = client.post("/api/v1/jobs/", {**body, "mode": "sideways"}, content_type="application/json")
    assert bad.status_code == 400 and "mode" in bad.json()["error"]["details"]
    assert not JobRun.objects.exists()


def test_a_locked_view_is_skipped_not_run_twice(operator: Any, synced: feast_gateway.RepoRef) -> None:
    holder = JobRun.objects.create(kind="materialize", status=JobRun.Status.RUNNING)
    other = JobRun.objects.create(kind="materialize", status=JobRun.Status.RUNNING)
    lease = timedelta(minutes=5)
    assert view_lock_acquire(project=PROJECT, view="employee_features", run=holder, lease=lease)
    assert not view_lock_acquire(project=PROJECT, view="employee_features", run=other, lease=lease)
    assert view_lock_acquire(project=PROJECT, view="employee_features", run=holder, lease=lease)  # re-entrant
    VIEW_LOCK.release(other, project=PROJECT, view="employee_features")  # not the holder: no effect
    assert not view_lock_acquire(project=PROJECT, view="employee_features", run=other, lease=lease)
    VIEW_LOCK.release(holder, project=PROJECT, view="employee_features")
    assert view_lock_acquire(project=PROJECT, view="employee_features", run=other, lease=lease)
    # an expired lease (dead worker) can be taken over
    assert view_lock_acquire(project=PROJECT, view="department_features", run=holder, lease=timedelta(seconds=-1))
    assert view_lock_acquire(project=PROJECT, view="department_features", run=other, lease=lease)


def test_the_job_list_and_detail_pages_show_runs(client: Client, operator: Any, synced: Any) -> None:
    run = JobRun.objects.create(
        kind="materialize", status=JobRun.Status.RUNNING, progress_done=2, progress_total=4, started_by=operator
    )
    client.force_login(operator)
    page = client.get("/jobs/")
    assert page.status_code == 200 and f'data-job-id="{run.pk}"'.encode() in page.content
    assert b"materialize-form" in page.content
    status = client.get(f"/jobs/{run.pk}/status/")
    assert b'data-job-status="running"' in status.content and b'value="50"' in status.content
    assert b'hx-trigger="every 1s"' in status.content
    api = client.get("/api/v1/jobs/?kind=materialize").json()
    assert [r["id"] for r in api["results"]] == [run.pk] and api["results"][0]["progress_percent"] == 50
    assert client.get("/api/v1/jobs/?kind=nope").status_code == 400


@pytest.mark.parametrize(
    "text",
    ["__import__('os').system('true')", "is_active.real == 1", "is_active == len('x')", "is_active + 1 == 2", "x ="],
)
def test_materialize_filters_are_parsed_never_evaluated(text: str) -> None:
    with pytest.raises(MaterializeFilterInvalid):
        feast_gateway.parse_materialize_filter(text)


def test_materialize_filter_grammar_selects_rows() -> None:
    import pyarrow as pa

    table = pa.table({"is_active": [1, 0, 1, None], "band": ["a", "b", "c", "a"], "x": [1.5, -2.0, 3.0, 0.0]})
    cases = {
        "is_active == 1": 2,
        "is_active == 1 and band in ['a', 'b']": 1,
        "not (is_active == 1) or x < -1": 1,
        "band != 'a'": 2,
        "is_active == None": 1,
        "x >= -2": 4,
    }
    for text, expected in cases.items():
        assert table.filter(feast_gateway.parse_materialize_filter(text)).num_rows == expected, text
    assert feast_gateway.materialize_filter_columns("a == 1 and (b > 2 or a < 0)") == ["a", "b"]


@pytest.mark.clock
def test_materialize_command_runs_in_process_with_the_ledger(synced: feast_gateway.RepoRef) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(
        "materialize",
        "--project",
        PROJECT,
        "--view",
        "department_features",
        "--start",
        (MATERIALIZE_END - timedelta(days=90)).isoformat(),
        "--end",
        MATERIALIZE_END.isoformat(),
        stdout=out,
    )
    assert "department_features: succeeded" in out.getvalue()
    record = MaterializationRecord.objects.get(view="department_features")
    assert record.rows_written > 0 and record.rows_filtered == 0 and record.job_run.trigger == "command"
    assert json.dumps(record.job_run.result)  # JSON-safe


def test_an_unreachable_online_store_fails_the_run_with_a_clear_error(
    operator: Any,
    synced: feast_gateway.RepoRef,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    webhook: Any,
) -> None:
    from jobs.tasks import materialize_task

    settings.FEAST_CONFIG_VARS = {**settings.FEAST_CONFIG_VARS, "FEAST_REDIS_CONNECTION_STRING": "127.0.0.1:1"}
    feast_gateway.reset_stores()
    with django_capture_on_commit_callbacks(execute=False):
        run = materialization_start(
            actor=operator,
            project=PROJECT,
            views=["department_features"],
            mode="range",
            start=(DATA_END - timedelta(days=30)).isoformat(),
            end=DATA_END.isoformat(),
        )
    with pytest.raises(feast_gateway.OnlineStoreUnavailable):
        materialize_task(job_run_id=run.pk, **run.params)
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED
    assert "online store (redis) is unreachable" in run.error
    record = MaterializationRecord.objects.get(job_run=run)
    assert record.status == MaterializationRecord.Status.FAILED and "unreachable" in record.error
    assert not ViewLock.objects.filter(job_run__isnull=False).exists()
    (alert,) = webhook.received  # the failure fired the webhook once
    assert alert["event"] == "materialization.failed" and alert["fields"]["view"] == "department_features"
    feast_gateway.reset_stores()
    # A failed materialization changes no definition: the catalog records no version, in-band or out-of-band
    # (one used to appear as "Changed out-of-band", `removed batch_source.data_source_class_type`).
    versions = ObjectVersion.objects.count()
    (sync,) = registry_sync(trigger="test")
    assert (sync.status, sync.changed, sync.out_of_band) == ("succeeded", 0, 0), sync.error
    assert ObjectVersion.objects.count() == versions
    assert not ObjectVersion.objects.filter(version__gt=1).exists()


@pytest.mark.clock
def test_the_browser_preview_form_runs_on_a_worker_and_shows_the_vector(
    client: Client, proposer: Any, synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    client.force_login(proposer)
    form = client.get("/jobs/preview/")
    assert form.status_code == 200 and b"service:employee_attrition/attrition_model_v1" in form.content
    bad = client.post("/jobs/preview/", {"target": f"service:{PROJECT}/attrition_model_v1", "entities": "dept: 1"})
    assert bad.status_code == 400 and b"unknown entity key" in bad.content
    response = client.post(
        "/jobs/preview/",
        {
            "target": f"service:{PROJECT}/attrition_model_v2",
            "entities": "employee_id: 100\ndepartment_id: 3\nmonths_since_last_review: 14",
        },
    )
    assert response.status_code == 302
    run = wait_for_terminal(JobRun.objects.get(kind="preview"))
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    page = client.get(response["Location"]).content.decode()
    v2 = [
        "employee_features:overall_satisfaction",
        "employee_features:tenure",
        "employee_features:overtime",
        "department_features:attrition_rate_90d",
        "department_features:avg_satisfaction",
        "employee_risk_signals:satisfaction_x_overtime",
        "employee_risk_signals:review_overdue",
    ]
    positions = [page.index(f'data-feature="{ref}"') for ref in v2]
    assert positions == sorted(positions)  # rendered in the service's declared order
    assert "/get-online-features" in page


def test_the_materialize_button_queues_a_run_for_operators_only(
    client: Client, viewer: Any, operator: Any, synced: Any
) -> None:
    client.force_login(viewer)
    assert client.post("/jobs/start/materialize/", {"views": [f"{PROJECT}/employee_features"]}).status_code == 403
    client.force_login(operator)
    response = client.post(
        "/jobs/start/materialize/", {"views": [f"{PROJECT}/employee_features"], "mode": "incremental"}
    )
    run = JobRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{run.pk}/"
    assert run.params["views"] == ["employee_features"] and run.params["project"] == PROJECT
    assert run.status == JobRun.Status.QUEUED and run.celery_task_id  # enqueued once the row was committed


def test_the_range_form_reads_an_empty_end_as_now_and_refuses_a_future_one(
    client: Client, operator: Any, synced: Any
) -> None:
    client.force_login(operator)
    page = client.get("/jobs/").content.decode()
    assert "End (UTC; empty: now; not in the future)" in page
    # The browser's datetime-local value (no seconds, no offset) with an empty end: queued, ending now.
    start = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = {"views": [f"{PROJECT}/employee_features"], "mode": "range", "start": start, "end": ""}
    response = client.post("/jobs/start/materialize/", form)
    run = JobRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{run.pk}/"
    assert abs(datetime.fromisoformat(run.params["end"]) - timezone.now()) < timedelta(minutes=5)
    # An end in the future is refused with why, on the page and in the API; nothing is queued.
    future = (timezone.now() + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M")
    refused = client.post("/jobs/start/materialize/", {**form, "end": future}, follow=True).content.decode()
    assert "Not started: end" in refused and "is in the future" in refused and "leave end empty for now" in refused
    body = {"kind": "materialize", "project": PROJECT, "mode": "range", "start": start, "end": future + ":00Z"}
    api = client.post("/api/v1/jobs/", body, content_type="application/json")
    assert api.status_code == 400 and "in the future" in api.json()["error"]["message"]
    assert "end" in api.json()["error"]["details"]
    incremental = {"kind": "materialize", "project": PROJECT, "end": future + ":00Z"}
    assert client.post("/api/v1/jobs/", incremental, content_type="application/json").status_code == 400
    # A start that is not in the past has nothing to materialize.
    with pytest.raises(InvalidInput, match="start .* is not in the past"):
        materialization_params(project=PROJECT, views=None, mode="range", start=future, end=None)
    assert JobRun.objects.count() == 1


def test_an_unreachable_registry_fails_the_run_with_a_clear_error(
    operator: Any, synced: feast_gateway.RepoRef, settings: Any
) -> None:
    from catalog.exceptions import RegistryUnavailable
    from jobs.tasks import materialize_task

    run = JobRun.objects.create(
        kind="materialize",
        params={"project": PROJECT, "views": None, "mode": "incremental", "start": None, "end": None},
    )
    settings.FEAST_CONFIG_VARS = {
        **settings.FEAST_CONFIG_VARS,
        "FEAST_REGISTRY_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
    }
    feast_gateway.reset_stores()
    with pytest.raises(RegistryUnavailable):
        materialize_task(job_run_id=run.pk, project=PROJECT)
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED
    assert "registry" in run.error and "unreachable" in run.error
    feast_gateway.reset_stores()


@pytest.mark.clock
def test_the_portal_writes_byte_identical_online_values_to_feasts_cli(
    synced: feast_gateway.RepoRef, transactional_db: None
) -> None:
    """The registry fixture materialized with `feast materialize-incremental`; the portal, materializing the
    same interval, must leave exactly the same bytes in Redis for every entity both wrote."""
    client = redis.Redis.from_url(settings.REDIS_URL.url)
    view = CatalogObject.objects.get(project__name=PROJECT, kind="feature_view", name="employee_features")
    (interval,) = view.materialization_intervals  # the CLI's run
    by_cli = {k: client.hgetall(k) for k in client.scan_iter(count=1000) if k.endswith(PROJECT.encode())}
    clear_online_store()
    run = JobRun.objects.create(kind="materialize", status=JobRun.Status.RUNNING)
    from jobs.services.materialization import materialization_run

    run.params = {
        "project": PROJECT,
        "views": ["employee_features"],
        "mode": "range",
        "start": interval["start"],
        "end": interval["end"],
    }
    result = materialization_run(run)
    assert result["views"][0]["status"] == "succeeded", result
    by_portal = {k: client.hgetall(k) for k in client.scan_iter(count=1000) if k.endswith(PROJECT.encode())}
    assert len(by_portal) == result["views"][0]["rows_written"] > 100
    common = set(by_portal) & set(by_cli)
    assert len(common) == len(by_portal)  # the portal wrote a subset (the filter), never other entities
    for key in common:
        portal_fields = by_portal[key]
        assert portal_fields == {f: by_cli[key][f] for f in portal_fields}, key


def test_job_lists_have_a_query_budget(
    client: Client, operator: Any, db: None, django_assert_max_num_queries: Any
) -> None:
    for i in range(30):
        JobRun.objects.create(kind="materialize" if i % 2 else "preview", started_by=operator, params={"i": i})
    client.force_login(operator)
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/v1/jobs/?page_size=50").json()["results"]) == 30
    with django_assert_max_num_queries(12):
        assert client.get("/jobs/").status_code == 200


def test_a_run_skips_a_view_another_run_holds(operator: Any, synced: feast_gateway.RepoRef) -> None:
    from jobs.services.materialization import materialization_run

    holder = JobRun.objects.create(kind="materialize", status=JobRun.Status.RUNNING)
    assert view_lock_acquire(project=PROJECT, view="department_features", run=holder, lease=timedelta(minutes=5))
    run = JobRun.objects.create(
        kind="materialize",
        status=JobRun.Status.RUNNING,
        params={
            "project": PROJECT,
            "views": ["department_features"],
            "mode": "range",
            "start": (DATA_END - timedelta(days=30)).isoformat(),
            "end": DATA_END.isoformat(),
        },
    )
    result = materialization_run(run)
    assert result["skipped"] == ["department_features"] and "error" not in result  # a skip is not a failure
    record = MaterializationRecord.objects.get(job_run=run)
    assert record.status == MaterializationRecord.Status.SKIPPED and record.rows_written == 0
    assert ViewLock.objects.get(view="department_features").job_run == holder  # untouched


def test_the_admin_shows_the_job_ledger_read_only(client: Client, admin_user: Any, db: None) -> None:
    run = JobRun.objects.create(kind="materialize")
    client.force_login(admin_user)
    for model in ("jobrun", "materializationrecord", "viewlock", "freshnessalert"):
        assert client.get(f"/admin/jobs/{model}/").status_code == 200, model
    assert client.get(f"/admin/jobs/jobrun/{run.pk}/delete/").status_code == 403


def test_beat_materializes_on_the_configured_cron_and_rejects_a_bad_one() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "from django.conf import settings as s; e = s.CELERY_BEAT_SCHEDULE['jobs-materialize-incremental'];"
        "print(e['task'], e['schedule']._orig_minute, e['schedule']._orig_hour, e['schedule']._orig_day_of_week)"
    )

    def run(cron: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PORTAL_MATERIALIZE_CRON": cron}
        return subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert run("30 3 * * 1-5").stdout.split()[-4:] == ["jobs.materialize", "30", "3", "1-5"]
    bad = run("30 3 * *")
    assert bad.returncode != 0 and "PORTAL_MATERIALIZE_CRON must have 5 fields" in bad.stderr


@pytest.mark.django_db
def test_the_jobs_page_and_the_api_filter_runs_alike(client: Client, operator: Any, viewer: Any) -> None:
    """One FilterSet (jobs.filters.JobRunFilter) behind both lists: same parameters, same rows, same order."""
    mine = JobRun.objects.create(kind="materialize", params={"project": PROJECT}, started_by=operator, trigger="button")
    other = JobRun.objects.create(kind="materialize", params={"project": "other"}, trigger="schedule")
    failed = JobRun.objects.create(
        kind="skew", params={"project": PROJECT}, status=JobRun.Status.FAILED, started_by=viewer, trigger="api"
    )
    preview = JobRun.objects.create(kind="preview", params={"project": PROJECT}, started_by=operator, trigger="api")
    client.force_login(operator)
    cases = {
        f"project={PROJECT}": [preview, failed, mine],
        "kind=materialize": [other, mine],
        "status=failed": [failed],
        "started_by=vera": [failed],
        "trigger=schedule": [other],
        f"project={PROJECT}&kind=materialize&started_by=otto": [mine],
    }
    for query, expected in cases.items():
        api = [r["id"] for r in client.get(f"/api/v1/jobs/?{query}").json()["results"]]
        page = client.get(f"/jobs/?{query}").content.decode()
        shown = [int(pk) for pk in re.findall(r'data-job-id="(\d+)"', page)]
        assert api == shown == [r.pk for r in expected], query
    for bad in ("kind=nope", "status=lost", "since=yesterday-ish"):
        assert client.get(f"/api/v1/jobs/?{bad}").status_code == 400
        page = client.get(f"/jobs/?{bad}").content.decode()
        assert "bad filter value" in page and "data-job-id" not in page
    # A viewer sees no one else's previews (they hold feature values), through either list.
    client.force_login(viewer)
    api = [r["id"] for r in client.get(f"/api/v1/jobs/?project={PROJECT}").json()["results"]]
    assert preview.pk not in api and api == [failed.pk, mine.pk]
