"""Shared fixtures: real PostgreSQL, Redis, Feast and Celery (nothing is mocked).

Registry isolation: once per worker, the demo repo and the rich repo are applied with the real
`feast` CLI into a template database (one SQL registry, two projects) and the demo repo is
materialized into the worker's Redis database. Each test that needs a registry gets a fresh clone
(`CREATE DATABASE ... TEMPLATE ...`, ~0.2 s) so tests can change it freely.

Online isolation: the template's online values are snapshotted once (Redis DUMP); each test that takes
a registry gets them back exactly (every Feast key deleted, the snapshot RESTOREd). So a test reads only
what the fixture materialized and what it wrote itself, whatever ran before it in the worker.

Time: the template is materialized with explicit windows ending at the data's "now" (`env.DATA_END`,
today unless TEST_DATA_SHIFT_DAYS moves it), never `materialize-incremental`, whose start Feast takes
from the real clock.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group, User

from catalog import feast_gateway
from tests import environment as env

ROOT = Path(__file__).resolve().parent.parent
RICH_REPO_SRC = ROOT / "tests" / "repos" / "rich"


def _admin_conn() -> psycopg.Connection[Any]:
    return psycopg.connect(f"{env.PG}/postgres", autocommit=True)


def recreate_database(name: str, template: str | None = None) -> None:
    feast_gateway.dispose_engines()
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def run_feast(repo: feast_gateway.RepoRef, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `feast` CLI on a repo; fails the test with Feast's stderr if it fails."""
    result = feast_gateway.run_cli(repo, list(args), timeout=600)
    assert result.returncode == 0, f"feast {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def wait_for_terminal(run: Any, timeout: float = 180) -> Any:
    """Poll a JobRun row until a worker finished it (succeeded, failed, ...); fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_terminal:
            return run
        time.sleep(0.1)
    raise AssertionError(f"job {run.pk} still {run.status} after {timeout}s: {run.progress_message}")


def copy_rich_repo(dst: Path) -> Path:
    """A copy of the rich test repo with its tiny data files."""
    shutil.copytree(RICH_REPO_SRC, dst, ignore=shutil.ignore_patterns("data", "__pycache__"))
    subprocess.run([sys.executable, str(dst / "make_data.py"), str(dst / "data")], check=True, capture_output=True)
    return dst


@pytest.fixture(scope="session")
def rich_repo_dir() -> Path:
    """The worker's copy of tests/repos/rich (read-only for tests; copy it to edit)."""
    return copy_rich_repo(env.WORK / "rich")


def materialize_over_ttls(repo: feast_gateway.RepoRef, end: datetime = env.DATA_END) -> dict[str, tuple[str, str]]:
    """`feast materialize START END -v VIEW` for every online batch view, START = END - the view's TTL.

    What `materialize-incremental END` writes on END's own day, without its dependence on the real clock
    (its start is `now - ttl`). Returns each view's window as the ISO strings given to the CLI.
    """
    windows = {}
    for view in feast_gateway.read_registry(repo).feature_views:
        if view.kind == "on_demand" or not view.online:
            continue
        ttl = timedelta(seconds=view.ttl_seconds) if view.ttl_seconds else timedelta(days=3650)  # 0: no expiry
        windows[view.name] = ((end - ttl).isoformat(), end.isoformat())
        run_feast(repo, "materialize", windows[view.name][0], windows[view.name][1], "-v", view.name)
    return windows


def feast_keys(client: redis.Redis) -> list[bytes]:
    """Feast's Redis keys in this worker's database: serialized entity key + project name."""
    projects = (b"employee_attrition", b"ride_sharing")
    return [k for k in client.scan_iter(count=1000) if k.endswith(projects)]


@pytest.fixture(scope="session")
def online_snapshot(registry_template: str) -> dict[bytes, bytes]:
    """The template's online values, as Redis DUMP payloads (restored for every test that takes a registry)."""
    client = redis.Redis.from_url(settings.REDIS_URL.url)
    snapshot = {key: client.dump(key) for key in feast_keys(client)}
    assert snapshot, "the template materialization wrote no online values"
    return snapshot  # type: ignore[return-value]


def restore_online_store(snapshot: dict[bytes, bytes]) -> None:
    """Make the worker's online store exactly the template's: no key a previous test wrote survives."""
    client = redis.Redis.from_url(settings.REDIS_URL.url)
    pipe = client.pipeline(transaction=False)
    stale = feast_keys(client)
    if stale:
        pipe.delete(*stale)
    for key, payload in snapshot.items():
        pipe.restore(key, 0, payload, replace=True)
    pipe.execute()


@pytest.fixture(scope="session")
def registry_template() -> str:
    """Template registry DB with the demo project, applied and materialized once per worker."""
    redis.Redis.from_url(settings.REDIS_URL.url).flushdb()
    recreate_database(env.REGISTRY_DB)
    demo = feast_gateway.repo_ref(env.DEMO_REPO)
    run_feast(demo, "apply")
    materialize_over_ttls(demo)
    recreate_database(env.REGISTRY_TEMPLATE_DB, template=env.REGISTRY_DB)
    return env.REGISTRY_TEMPLATE_DB


@pytest.fixture(scope="session")
def registry_template_two_projects(registry_template: str, rich_repo_dir: Path) -> str:
    """Template registry DB holding two projects: the demo's and ride_sharing (one SQL registry)."""
    recreate_database(env.REGISTRY_DB, template=registry_template)
    run_feast(feast_gateway.repo_ref(rich_repo_dir), "apply")
    name = f"{env.REGISTRY_TEMPLATE_DB}_two"
    recreate_database(name, template=env.REGISTRY_DB)
    return name


@pytest.fixture
def registry(registry_template: str, online_snapshot: dict[bytes, bytes]) -> Iterator[str]:
    """A fresh clone of the demo template registry for this test (the SQL registry URL), and the
    template's online values restored exactly."""
    recreate_database(env.REGISTRY_DB, template=registry_template)
    restore_online_store(online_snapshot)
    yield settings.FEAST_REGISTRY_URL
    feast_gateway.dispose_engines()
    feast_gateway.reset_stores()


@pytest.fixture
def demo_repo(registry: str) -> feast_gateway.RepoRef:
    """The demo repo (employee_attrition), its registry freshly cloned."""
    return feast_gateway.repo_ref(env.DEMO_REPO)


@pytest.fixture
def rich_repo(registry: str, registry_template_two_projects: str, rich_repo_dir: Path) -> feast_gateway.RepoRef:
    """The rich repo (ride_sharing), in the same SQL registry as the demo project (fresh clone)."""
    recreate_database(env.REGISTRY_DB, template=registry_template_two_projects)
    return feast_gateway.repo_ref(rich_repo_dir)


@pytest.fixture
def editable_demo_repo(registry: str, tmp_path: Path, settings: Any) -> feast_gateway.RepoRef:
    """A copy of the demo repo's definitions that a test may edit and `feast apply`; governed by the portal."""
    dst = tmp_path / "feature_repo"
    shutil.copytree(env.DEMO_REPO, dst, ignore=shutil.ignore_patterns("__pycache__"))
    settings.FEAST_REPO_PATHS = [dst]
    return feast_gateway.repo_ref(dst)


# --- People (healthchecks' Alice/Bob/Charlie, as roles) ---------------------------------------------


def _user(username: str, *roles: str, **extra: Any) -> User:
    user = User.objects.create_user(username=username, password="correct horse battery", **extra)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def viewer(db: None) -> User:
    return _user("vera", "viewer")


@pytest.fixture
def proposer(db: None) -> User:
    return _user("paul", "proposer")


@pytest.fixture
def approver(db: None) -> User:
    return _user("ada", "approver")


@pytest.fixture
def operator(db: None) -> User:
    return _user("otto", "operator")


@pytest.fixture
def admin_user(db: None) -> User:
    return _user("root", "admin", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db: None) -> User:
    """Signed in, but holds no role."""
    return _user("olga")


# --- A real Celery worker --------------------------------------------------------------------------


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[Any]:
    """A real Celery worker consuming the worker's Redis broker (threads pool, in this process)."""
    from celery.contrib.testing.worker import start_worker

    from portal.celery import app

    redis.Redis.from_url(settings.REDIS_URL.url).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        shutdown_timeout=30,
        queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
    ) as worker:
        yield worker


@pytest.fixture
def storage_dir(tmp_path: Path, settings: Any) -> Path:
    """PORTAL_TRAINING_STORAGE_URL for this test (the web tier and the in-process worker share it)."""
    path = tmp_path / "datasets"
    settings.PORTAL_TRAINING_STORAGE_URL = str(path)
    settings.PORTAL_TRAINING_S3_ENDPOINT_URL = ""
    return path


@pytest.fixture(scope="session", autouse=True)
def collected_static() -> None:
    """Pages use the manifest static storage, as in production: collect once per worker."""
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)
