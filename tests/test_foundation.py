"""Foundation: configuration errors, health endpoints, and real Feast apply/materialize/online reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.db.models import F
from django.test import Client

from catalog import feast_gateway
from portal.celery import app as celery_app
from tests import environment as env
from tests import online
from tests.conftest import materialize_over_ttls, run_feast

ROOT = Path(__file__).resolve().parent.parent


def run_manage(
    *args: str, overrides: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(overrides or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "overrides", "setting"),
    [
        ("migrate", {"DATABASE_URL": "postgresql://postgres@127.0.0.1:notaport/x"}, "DATABASE_URL"),
        ("migrate", {"DATABASE_URL": "mysql://root@127.0.0.1/portal"}, "DATABASE_URL"),
        ("migrate", {"DATABASE_URL": "postgresql:///nohost"}, "DATABASE_URL"),
        ("preflight", {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/feature_portal"}, "DATABASE_URL"),
        ("preflight", {"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL"),
        ("preflight", {"REDIS_URL": "redis://127.0.0.1:6379/abc"}, "REDIS_URL"),
        ("migrate", {"FEAST_REPO_PATH": "/nonexistent/feature_repo"}, "FEAST_REPO_PATH"),
        ("migrate", {"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ("migrate", {"CATALOG_SYNC_INTERVAL_SECONDS": "often"}, "CATALOG_SYNC_INTERVAL_SECONDS"),
    ],
)
def test_bad_configuration_prints_one_line_naming_the_setting(
    command: str, overrides: dict[str, str], setting: str
) -> None:
    # Everything else valid and reachable, so the one fault is the only line.
    healthy = {"DATABASE_URL": f"{env.PG}/postgres", "FEAST_REGISTRY_URL": f"{env.PG}/postgres"}
    result = run_manage(command, overrides={**healthy, **overrides})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error:")
    assert setting in lines[0]


def test_missing_secret_key_is_named() -> None:
    result = run_manage("check", drop=("DJANGO_SECRET_KEY",))
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-kubernetes-secret-volume\n")
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        overrides={"DJANGO_SECRET_KEY_FILE": str(secret)},
        drop=("DJANGO_SECRET_KEY",),
    )
    assert result.stdout.strip().endswith("from-a-kubernetes-secret-volume"), result.stderr


def test_services_profile_derives_feast_settings_from_database_and_redis_urls() -> None:
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.PORTAL_PROFILE, s.FEAST_REGISTRY_URL, s.FEAST_REDIS_CONNECTION_STRING)",
        overrides={"DATABASE_URL": "postgresql://u:p@db.internal:5433/portal", "REDIS_URL": "redis://cache:6380/4"},
        drop=("FEAST_REGISTRY_URL",),
    )
    profile, registry, redis_conn = result.stdout.split()[-3:]
    assert profile == "services"
    assert registry == "postgresql+psycopg://u:p@db.internal:5433/portal_feast_registry"
    assert redis_conn == "cache:6380,db=4"


@pytest.mark.django_db
def test_healthz_answers_without_touching_any_dependency(client: Client, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_broker_and_registry(client: Client, demo_repo: feast_gateway.RepoRef) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failing"] == []
    assert body["checks"]["database"]["detail"].startswith("postgresql")
    assert "redis" in body["checks"]["broker"]["detail"]
    assert body["checks"]["feast_registry"]["detail"].startswith("sql registry postgresql+psycopg://")


@pytest.mark.django_db
def test_readyz_names_the_registry_when_it_cannot_be_read(client: Client, settings: Any, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text("project: nowhere\nregistry: data/registry.db\nprovider: local\n")
    settings.FEAST_REPO_PATHS = [repo]
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["feast_registry"]
    assert "does not exist" in body["checks"]["feast_registry"]["error"]


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client: Client, demo_repo: feast_gateway.RepoRef) -> None:
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


@pytest.mark.clock
@pytest.mark.django_db
def test_services_profile_serves_attrition_model_v1_in_the_service_order(demo_repo: feast_gateway.RepoRef) -> None:
    """feast apply + feast materialize ran (SQL registry, Redis); read back known employees."""
    assert feast_gateway.registry_location(demo_repo).kind == "sql"
    rows = online.employee_rows()
    employees = [online.active_employee(rows, n) for n in range(5)]
    read = feast_gateway.online_read(
        demo_repo, feature_service="attrition_model_v1", entity_rows=[{"employee_id": e} for e in employees]
    )
    for employee, values in zip(employees, read.rows, strict=True):
        assert [v.index for v in values] == list(range(6))
        online.assert_served(values, rows.loc[employee])
    # An unknown employee is NOT_FOUND for every position, in the same order.
    missing = feast_gateway.online_read(
        demo_repo, feature_service="attrition_model_v1", entity_rows=[{"employee_id": 1}]
    )
    assert [(v.feature, v.status) for v in missing.rows[0]] == [(name, "NOT_FOUND") for name in online.V1_ORDER]


@pytest.mark.clock
def test_quickstart_profile_applies_materializes_and_serves(tmp_path: Path) -> None:
    """The same feature_repo/ definitions on the file registry + SQLite online store."""
    repo_dir = tmp_path / "feature_repo"
    shutil.copytree(
        env.DEMO_REPO, repo_dir, ignore=shutil.ignore_patterns("__pycache__", "registry.db", "online_store.db")
    )
    repo = feast_gateway.repo_ref(repo_dir, "feature_store.yaml")
    run_feast(repo, "apply")
    materialize_over_ttls(repo)
    assert (repo_dir / "data" / "registry.db").exists() and (repo_dir / "data" / "online_store.db").exists()
    rows = online.employee_rows(repo_dir / "data")
    employee = online.active_employee(rows)
    read = feast_gateway.online_read(
        repo, feature_service="attrition_model_v1", entity_rows=[{"employee_id": employee}]
    )
    online.assert_served(read.rows[0], rows.loc[employee])
    feast_gateway.reset_stores()


def test_generator_is_deterministic_and_has_leavers(tmp_path: Path) -> None:
    args = ["--employees", "200", "--years", "2", "--end", (env.DATA_END - timedelta(days=300)).date().isoformat()]
    for out in ("a", "b"):
        subprocess.run(
            [sys.executable, "-m", "feature_repo.generate", *args, "--out", str(tmp_path / out)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    a = pd.read_parquet(tmp_path / "a" / "employee_attrition.parquet")
    b = pd.read_parquet(tmp_path / "b" / "employee_attrition.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert a.employee_id.nunique() == 200
    assert 0 < a.left_company.sum() < 200  # some, not all, leave
    assert list(a.columns[:3]) == ["employee_id", "department_id", "event_timestamp"]
    bad = subprocess.run(
        [sys.executable, "-m", "feature_repo.generate", "--employees", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "at least 1" in bad.stderr


def test_preflight_checks_the_modes_of_secret_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A world-readable file behind a secret's *_FILE is flagged; a public *_FILE (a CA bundle) is not."""
    from portal import env as portal_env
    from portal.preflight import secret_file_warnings

    secret, bundle = tmp_path / "db-url", tmp_path / "ca.pem"
    for path in (secret, bundle):
        path.write_text("x")
        path.chmod(0o644)
    assert "DATABASE_URL" in portal_env.SECRET_NAMES  # read with env_secret by the settings
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    warnings = secret_file_warnings()
    assert any(w.startswith(f"{secret} is readable by other users") for w in warnings), warnings
    assert not any(str(bundle) in w for w in warnings), warnings


def test_preflight_checks_every_profiles_demo_credentials(tmp_path: Path, settings: Any) -> None:
    """One demo-credentials file per profile and database: each is a secret file, each is checked."""
    from portal.preflight import secret_file_warnings

    settings.VAR_DIR = tmp_path
    quickstart = tmp_path / "demo-credentials.quickstart-portal.txt"
    services = tmp_path / "demo-credentials.services-127.0.0.1-5432-portal.txt"
    quickstart.write_text("viewer x")
    quickstart.chmod(0o600)
    services.write_text("viewer y")
    services.chmod(0o644)
    warnings = secret_file_warnings()
    assert [w for w in warnings if "demo-credentials" in w] == [
        f"{services} is readable by other users (mode 644): chmod 600 it"
    ]


@pytest.mark.django_db
def test_nul_characters_and_oversized_bodies_stop_at_the_door(client: Any, settings: Any) -> None:
    """portal.middleware: the same 400 naming the parameter on pages and the API, and a 413 unread."""
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", password="pw")
    client.login(username="root", password="pw")
    api = client.get("/api/v1/objects/", {"owner": "a\x00b"})
    assert api.status_code == 400 and api.json()["error"]["details"] == {"owner": ["NUL characters are not allowed"]}
    body = client.post(
        "/api/v1/change-requests/",
        '{"project": "p", "title": "t", "edits": [{"op": "delete", "kind": "entity", "name": "a\\u0000"}]}',
        content_type="application/json",
    )
    assert body.status_code == 400 and "edits[0].name contains a NUL character" in body.json()["error"]["message"]
    page = client.get("/search/", {"q": "x\x00"})
    assert page.status_code == 400 and b"q contains a NUL character" in page.content
    settings.PORTAL_MAX_REQUEST_BYTES = 2 * 1024 * 1024
    big = client.post("/api/v1/change-requests/", "x" * (2 * 1024 * 1024 + 1), content_type="application/json")
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"


@pytest.mark.django_db
def test_guessing_a_password_is_locked_out_and_audited(client: Any, settings: Any) -> None:
    """Five wrong passwords lock the account for PORTAL_LOGIN_LOCKOUT_SECONDS: even the right one is refused
    meanwhile, the lockout is audited, and once it has passed the right password works again."""
    from django.contrib.auth.models import User

    from catalog.models import AuditEvent, LoginFailure

    User.objects.create_user("admin", password="the right one")
    for _ in range(settings.PORTAL_LOGIN_MAX_FAILURES):
        wrong = client.post("/accounts/login/", {"username": "admin", "password": "guess"})
        assert wrong.status_code == 200 and "_auth_user_id" not in client.session
    right = client.post("/accounts/login/", {"username": "admin", "password": "the right one"})
    assert right.status_code == 200 and "Too many failed sign-ins" in right.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="auth.locked_out")
    assert event.object_id == "admin" and event.after["address"] == "127.0.0.1"
    # other accounts from elsewhere are not affected
    User.objects.create_user("bea", password="pw")
    assert client.post("/accounts/login/", {"username": "bea", "password": "pw"}).status_code == 302
    client.logout()
    LoginFailure.objects.filter(username="admin").update(created_at=F("created_at") - timedelta(seconds=901))
    assert client.post("/accounts/login/", {"username": "admin", "password": "the right one"}).status_code == 302
    assert not LoginFailure.objects.filter(username="admin").exists()  # a success clears the account's failures


def test_readyz_and_the_dashboard_say_whether_a_worker_is_alive(
    client: Client, admin_user: Any, celery_worker: Any, demo_repo: feast_gateway.RepoRef, monkeypatch: Any
) -> None:
    """A real worker's consumer writes its heartbeat row; without a recent one, /readyz says so (without
    failing readiness: the web works, jobs wait) and the dashboard warns."""
    import time

    from jobs.models import WorkerHeartbeat

    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.exists():
        assert time.monotonic() < deadline, "the worker wrote no heartbeat"
        time.sleep(0.2)
    body = client.get("/readyz").json()
    assert body["checks"]["workers"]["ok"] and body["checks"]["workers"]["detail"].startswith("1 alive")
    client.force_login(admin_user)
    assert 'data-workers="1"' in client.get("/").content.decode()
    from jobs.services import workers

    # as if the worker had died: its last heartbeat older than the bound (the running worker keeps beating,
    # so the bound moves instead of the row)
    monkeypatch.setattr(workers, "ALIVE_SECONDS", -3600)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and "workers" not in body["failing"]
    assert not body["checks"]["workers"]["ok"] and "no Celery worker has reported" in body["checks"]["workers"]["error"]
    assert WorkerHeartbeat.objects.count() == 1  # one row per worker, updated in place
    assert "No worker is alive" in client.get("/").content.decode()
