"""The apply writes a request's objects all or nothing: one transaction on a SQL registry (with exactly the rows
Feast's own apply writes), a renamed file on a file registry; a worker killed mid-apply leaves the registry as
it was, the request says so, and the sync never credits a failed request."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from catalog import feast_gateway
from catalog.feast_gateway.changes import _feast_object_for_apply, _store_for
from catalog.models import ChangeRequest, ExpectedChange, ObjectVersion
from catalog.services.change_requests import change_request_approve, change_request_create
from catalog.services.planning import Proposal
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from jobs.services import stale_runs_sweep
from jobs.services.apply import change_request_apply_start, change_requests_sweep
from tests import environment as env
from tests.conftest import recreate_database, run_feast
from tests.governance.conftest import PROJECT
from tests.jobs.conftest import worker_process

# The change of the incident: a dtype change that touches the view and both services reading the field.
OVERTIME = {"op": "change_dtype", "view": "employee_features", "field": "overtime", "dtype": "Float64"}
TOUCHED = ["feature_service:attrition_model_v1", "feature_service:attrition_model_v2", "feature_view:employee_features"]

# --- Comparing registry rows modulo the timestamps Feast stamps ----------------------------------------

_PROTO_TABLES = {
    # table: (name column, proto column, proto type)
    "projects": ("project_name", "project_proto", "Project"),
    "entities": ("entity_name", "entity_proto", "Entity"),
    "data_sources": ("data_source_name", "data_source_proto", "DataSource"),
    "feature_views": ("feature_view_name", "feature_view_proto", "FeatureView"),
    "stream_feature_views": ("feature_view_name", "feature_view_proto", "StreamFeatureView"),
    "on_demand_feature_views": ("feature_view_name", "feature_view_proto", "OnDemandFeatureView"),
    "feature_services": ("feature_service_name", "feature_service_proto", "FeatureService"),
}
_VERSION_TYPES = {
    "feature_view": "FeatureView",
    "stream_feature_view": "StreamFeatureView",
    "on_demand_feature_view": "OnDemandFeatureView",
}
_STAMPS = {"created_timestamp", "last_updated_timestamp"}


def _without_stamps(message: Any) -> Any:
    """Clear every created/last-updated Timestamp, however deeply nested (meta, embedded sources, ...)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.name in _STAMPS and field.message_type.full_name == "google.protobuf.Timestamp":
            message.ClearField(field.name)
        elif field.is_repeated and field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _without_stamps(item)
        elif field.is_repeated:
            for item in value:
                _without_stamps(item)
        else:
            _without_stamps(value)
    return message


def _normalised(proto_type: str, blob: bytes) -> bytes:
    message = getattr(feast_gateway.feast_api(), proto_type)()
    message.ParseFromString(blob)
    return bytes(_without_stamps(message).SerializeToString(deterministic=True))


def registry_rows(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row Feast keeps for the project, with the stamps Feast puts on a write (times, version ids) removed."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(f"{env.PG}/{database}") as conn:
        for table, (name_col, proto_col, proto_type) in _PROTO_TABLES.items():
            result = conn.execute(
                f"SELECT {name_col}, {proto_col} FROM {table} WHERE project_id = %s ORDER BY 1", [PROJECT]
            )
            rows[table] = [(name, _normalised(proto_type, bytes(blob))) for name, blob in result]
        result = conn.execute(
            "SELECT feature_view_name, version_number, feature_view_type, feature_view_proto, description"
            " FROM feature_view_version_history WHERE project_id = %s ORDER BY 1, 2",
            [PROJECT],
        )
        rows["feature_view_version_history"] = [
            (name, number, kind, _normalised(_VERSION_TYPES[kind], bytes(blob)), description)
            for name, number, kind, blob, description in result
        ]
        result = conn.execute(
            "SELECT metadata_key, CASE WHEN metadata_key = 'last_updated_timestamp' THEN '' ELSE metadata_value END"
            " FROM feast_metadata WHERE project_id = %s ORDER BY 1",
            [PROJECT],
        )
        rows["feast_metadata"] = [tuple(r) for r in result]
    return rows


@pytest.fixture
def reference_repo(registry_template: str, demo_repo: feast_gateway.RepoRef, tmp_path: Path) -> Iterator[Any]:
    """A second copy of the demo registry (its own database) and a repo whose YAML points at it."""
    database = f"{env.REGISTRY_DB}_reference"
    recreate_database(database, template=registry_template)
    repo_dir = tmp_path / "reference_repo"
    shutil.copytree(env.DEMO_REPO, repo_dir, ignore=shutil.ignore_patterns("__pycache__", "data"))
    yaml_name = demo_repo.yaml_path.name
    url = settings.FEAST_REGISTRY_URL.rsplit("/", 1)[0] + f"/{database}"
    text = (repo_dir / yaml_name).read_text().replace("${FEAST_REGISTRY_URL}", url)
    assert url in text, "the services YAML no longer takes its registry from FEAST_REGISTRY_URL"
    (repo_dir / yaml_name).write_text(text)
    (repo_dir / "data").symlink_to(env.DEMO_REPO / "data")
    yield feast_gateway.repo_ref(repo_dir, yaml_name), database
    feast_gateway.dispose_engines()
    with psycopg.connect(f"{env.PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_the_one_transaction_apply_writes_exactly_the_rows_feasts_own_apply_writes(
    demo_repo: feast_gateway.RepoRef, reference_repo: Any
) -> None:
    reference, reference_db = reference_repo
    current = feast_gateway.project_protos(demo_repo, PROJECT)
    upserts, _ = feast_gateway.apply_edits(current, [OVERTIME])
    assert sorted(f"{k[0]}:{k[1]}" for k in upserts) == TOUCHED
    deletes = [current[("feature_view", "employee_activity")]]  # deletions go through the same transaction
    before = registry_rows(env.REGISTRY_DB)
    assert before == registry_rows(reference_db)

    feast_gateway.apply_protos(demo_repo, PROJECT, list(upserts.values()), deletes)
    # Feast's own apply (FeatureStore.apply, one transaction per row write) of the same objects.
    store = _store_for(reference, PROJECT)
    store.apply(
        [_feast_object_for_apply(o, PROJECT) for o in upserts.values()],
        objects_to_delete=[_feast_object_for_apply(o, PROJECT) for o in deletes],
        partial=False,
    )

    ours, feasts = registry_rows(env.REGISTRY_DB), registry_rows(reference_db)
    assert ours != before
    for table in ours:
        assert ours[table] == feasts[table], f"{table} differs from Feast's own apply"
    assert "employee_activity" not in [name for name, _ in ours["feature_views"]]
    versions = [(name, number) for name, number, *_ in ours["feature_view_version_history"]]
    assert ("employee_features", 1) in versions  # Feast's version history, written in the same transaction


def test_a_failure_inside_the_apply_rolls_back_the_rows_already_written(
    demo_repo: feast_gateway.RepoRef, settings: Any
) -> None:
    current = feast_gateway.project_protos(demo_repo, PROJECT)
    upserts, _ = feast_gateway.apply_edits(current, [OVERTIME])
    before = feast_gateway.registry_fingerprint(demo_repo)
    # Feast writes every registry row, then fails updating the online store (Redis unreachable).
    settings.FEAST_CONFIG_VARS = {**settings.FEAST_CONFIG_VARS, "FEAST_REDIS_CONNECTION_STRING": "127.0.0.1:1"}
    with pytest.raises(Exception, match="(?i)connect"):
        feast_gateway.apply_protos(
            demo_repo, PROJECT, list(upserts.values()), [current[("feature_view", "employee_activity")]]
        )
    assert feast_gateway.registry_fingerprint(demo_repo) == before


def test_a_file_registry_is_replaced_by_rename_never_rewritten_in_place(
    registry: str, tmp_path: Path, settings: Any
) -> None:
    repo_dir = tmp_path / "quickstart"
    shutil.copytree(env.DEMO_REPO, repo_dir, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copytree(env.DEMO_REPO / "data", repo_dir / "data", ignore=shutil.ignore_patterns("registry.db", "*.db"))
    repo = feast_gateway.repo_ref(repo_dir, "feature_store.yaml")
    run_feast(repo, "apply")
    path = repo_dir / "data" / "registry.db"
    inode = path.stat().st_ino
    current = feast_gateway.project_protos(repo, PROJECT)
    upserts, _ = feast_gateway.apply_edits(current, [OVERTIME])

    feast_gateway.apply_protos(repo, PROJECT, list(upserts.values()), [])

    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".registry")) == []  # no leftovers
    after = feast_gateway.project_protos(repo, PROJECT, list(upserts))
    assert {k: feast_gateway.content_hash(v) for k, v in after.items()} == {
        k: feast_gateway.content_hash(v) for k, v in upserts.items()
    }


# --- The request after a failure -------------------------------------------------------------------------


def _approved(people: dict[str, User], *edits: dict[str, Any]) -> ChangeRequest:
    cr = change_request_create(
        actor=people["author"], project=PROJECT, title="overtime", edits=list(edits), submit=True
    )
    for approver in (people["approver1"], people["approver2"], people["hr_approver"]):
        cr.refresh_from_db()
        if cr.status == "approved":
            break
        change_request_approve(cr=cr, actor=approver)
    cr.refresh_from_db()
    assert cr.status == "approved" and cr.required_approvals == 2
    return cr


def _applying_with_a_dead_worker(cr: ChangeRequest, operator: User) -> ChangeRequest:
    """The request claimed by an apply job whose worker died before finishing (as the sweeper leaves it)."""
    run = change_request_apply_start(cr=cr, actor=operator)  # `db` tests never commit: nothing is enqueued
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.FAILED, error="no heartbeat")
    return cr


def _labels(cr: ChangeRequest) -> list[str]:
    return sorted(f"{o['kind']}:{o['name']}" for o in cr.proposal["upserts"])


@pytest.mark.django_db
def test_the_sweeper_says_a_dead_workers_request_wrote_nothing(
    people: dict[str, User], synced: feast_gateway.RepoRef
) -> None:
    cr = _approved(people, OVERTIME)
    _applying_with_a_dead_worker(cr, people["operator"])
    ExpectedChange.objects.create(
        project_name=PROJECT, kind="feature_view", name="employee_features", content_hash="x", change_request=cr
    )
    assert change_requests_sweep() == 1
    cr.refresh_from_db()
    assert cr.status == "failed"
    assert cr.apply_result["registry"] == "unchanged"
    assert cr.apply_result["applied"] == [] and cr.apply_result["not_applied"] == _labels(cr) == TOUCHED
    assert "worker died" in cr.apply_result["error"]
    assert not ExpectedChange.objects.filter(change_request=cr).exists()


@pytest.mark.django_db
def test_the_sweeper_records_a_write_that_committed_before_the_worker_died_as_applied(
    people: dict[str, User], synced: feast_gateway.RepoRef
) -> None:
    cr = _approved(people, OVERTIME)
    _applying_with_a_dead_worker(cr, people["operator"])
    proposal = Proposal.from_json(cr.proposal)
    feast_gateway.apply_protos(synced, PROJECT, list(proposal.upserts.values()), [])  # the commit happened
    assert change_requests_sweep() == 1
    cr.refresh_from_db()
    assert cr.status == "applied"
    assert cr.apply_result["registry"] == "fully applied"
    assert cr.apply_result["applied"] == TOUCHED and cr.apply_result["not_applied"] == []


@pytest.mark.django_db
def test_the_sync_never_credits_a_failed_request(people: dict[str, User], synced: feast_gateway.RepoRef) -> None:
    cr = _approved(people, OVERTIME)
    proposal = Proposal.from_json(cr.proposal)
    view = proposal.upserts[("feature_view", "employee_features")]
    ExpectedChange.objects.create(
        project_name=PROJECT,
        kind="feature_view",
        name="employee_features",
        content_hash=feast_gateway.content_hash(view),
        source=f"change-request:{cr.pk}",
        change_request=cr,
    )
    ChangeRequest.objects.filter(pk=cr.pk).update(status=ChangeRequest.Status.FAILED)
    # Someone repairs the registry by hand with exactly the content the failed request proposed.
    feast_gateway.apply_protos(synced, PROJECT, list(proposal.upserts.values()), [])
    (run,) = registry_sync(project=PROJECT, trigger="test")
    assert run.out_of_band == len(TOUCHED)
    version = ObjectVersion.objects.filter(object__name="employee_features").latest("version")
    assert version.out_of_band and version.change_request_id is None
    assert ExpectedChange.objects.get(change_request=cr).consumed_at is None


# --- The incident: SIGKILL in the middle of a multi-object apply -----------------------------------------


def _blocked_backend(database: str, holder: psycopg.Connection[Any], timeout: float = 180) -> int:
    """The pid of the registry backend waiting for `holder`'s row lock (the worker's apply, mid-transaction)."""
    holder_pid = holder.info.backend_pid
    deadline = time.monotonic() + timeout
    with psycopg.connect(f"{env.PG}/postgres", autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND %s = ANY(pg_blocking_pids(pid))",
                [database, holder_pid],
            ).fetchone()
            if row:
                assert "feature_services" in row[1], row[1]
                return int(row[0])
            time.sleep(0.2)
    raise AssertionError("the worker's apply never reached the locked feature service row")


def _backend_alive(pid: int) -> bool:
    with psycopg.connect(f"{env.PG}/postgres", autocommit=True) as watcher:
        return watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


@pytest.mark.slow
def test_a_worker_killed_mid_apply_leaves_the_registry_unchanged_and_the_request_says_so(
    people: dict[str, User], synced: feast_gateway.RepoRef, transactional_db: None, settings: Any
) -> None:
    settings.JOBS_STALE_AFTER_SECONDS = 3
    cr = _approved(people, OVERTIME)
    keys = [(k.split(":")[0], k.split(":")[1]) for k in TOUCHED]
    old = {k: feast_gateway.content_hash(v) for k, v in feast_gateway.project_protos(synced, PROJECT, keys).items()}
    fingerprint = feast_gateway.registry_fingerprint(synced)
    redis.Redis.from_url(settings.REDIS_URL.url).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    environ = {
        **os.environ,
        "DATABASE_URL": f"{env.PG}/{connection.settings_dict['NAME']}",
        "JOBS_STALE_AFTER_SECONDS": "3",
    }
    # Another connection holds the services' registry rows: Feast writes the view, then waits on the first
    # service, inside the apply's transaction.
    holder = psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}")
    holder.execute("SELECT 1 FROM feature_services WHERE project_id = %s FOR UPDATE", [PROJECT])
    worker = worker_process(environ)
    try:
        change_request_apply_start(cr=cr, actor=people["operator"])
        backend = _blocked_backend(env.REGISTRY_DB, holder)
        assert worker.poll() is None
        # the view is written, uncommitted: nobody else sees it
        assert feast_gateway.registry_fingerprint(synced) == fingerprint
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # PostgreSQL notices the dead client while the statement still waits, and rolls back.
        deadline = time.monotonic() + 30
        while _backend_alive(backend) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _backend_alive(backend), "the killed worker's transaction is still open"
    finally:
        holder.rollback()
        holder.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)

    # The registry is exactly as before, for every object.
    assert feast_gateway.registry_fingerprint(synced) == fingerprint
    now = feast_gateway.project_protos(synced, PROJECT, keys)
    assert {k: feast_gateway.content_hash(v) for k, v in now.items()} == old

    # The sweeper settles the request from what the registry holds.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stale_runs_sweep()
        change_requests_sweep()
        cr.refresh_from_db()
        if cr.status != "applying":
            break
        time.sleep(1)
    assert cr.status == "failed", cr.apply_result
    assert cr.apply_result["registry"] == "unchanged"
    assert cr.apply_result["applied"] == [] and cr.apply_result["not_applied"] == TOUCHED
    assert not ExpectedChange.objects.filter(change_request=cr).exists()

    # The manual repair (the same content, applied outside the portal) is out-of-band, never the failed request's.
    feast_gateway.apply_protos(synced, PROJECT, list(Proposal.from_json(cr.proposal).upserts.values()), [])
    (run,) = registry_sync(project=PROJECT, trigger="test", force=True)
    assert run.out_of_band == len(TOUCHED)
    assert not ObjectVersion.objects.filter(change_request=cr).exists()
