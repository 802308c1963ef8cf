"""Smoke test of the quickstart profile, booted as `make run` boots it: no PostgreSQL, no Redis.

SQLite portal database, Feast file registry + SQLite online store, and a real Celery worker on the
SQLAlchemy/SQLite broker. Sign in, press "Sync registry now", and the worker process does the sync.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import environment as env

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[dict[str, str]]:
    repo = tmp_path / "feature_repo"
    shutil.copytree(env.DEMO_REPO, repo, ignore=shutil.ignore_patterns("__pycache__", "registry.db", "online_store.db"))
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "FEAST_REGISTRY_URL", "CELERY_QUEUE", "DJANGO_STATIC_ROOT"}
    }
    environ.update(
        {
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "FEAST_REPO_PATH": str(repo),
            "PORTAL_DEMO_PASSWORD": "quickstart-demo-pw",
            "PORT": str(_free_port()),
        }
    )
    yield environ


def _manage(environ: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr[-3000:]}"
    return result.stdout


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.mark.slow
def test_quickstart_profile_boots_serves_and_runs_jobs_on_a_worker(quickstart: dict[str, str]) -> None:
    environ = quickstart
    assert "profile: quickstart" in _manage(environ, "preflight")
    _manage(environ, "migrate", "--noinput")
    _manage(environ, "collectstatic", "--noinput")
    out = _manage(environ, "bootstrap_demo")
    assert "feast apply" in out and "catalog sync: succeeded (+15" in out
    again = _manage(environ, "bootstrap_demo", "--skip-materialize")  # running twice reuses what exists
    assert "exists: not re-applying" in again and "catalog sync: noop" in again

    port = environ["PORT"]
    base = f"http://127.0.0.1:{port}"
    # Logs go to files: an unread pipe fills up and stalls the process writing to it.
    logs = Path(environ["PORTAL_VAR_DIR"])
    web_log, worker_log = (logs / "web.log").open("wb"), (logs / "worker.log").open("wb")
    procs = [
        subprocess.Popen(
            [str(BIN / "gunicorn"), "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=environ,
            stdout=web_log,
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=environ,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        _wait_http(f"{base}/healthz")
        ready = json.load(urllib.request.urlopen(f"{base}/readyz", timeout=30))
        assert ready["status"] == "ok", ready
        assert ready["checks"]["database"]["detail"].startswith("sqlite")
        assert ready["checks"]["broker"]["detail"].startswith("sqla")
        assert ready["checks"]["feast_registry"]["detail"].startswith("file registry")

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login = opener.open(f"{base}/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
        form = urllib.parse.urlencode(
            {"username": "operator", "password": "quickstart-demo-pw", "csrfmiddlewaretoken": token}
        ).encode()
        home = (
            opener.open(urllib.request.Request(f"{base}/accounts/login/", data=form, headers={"Referer": base}))
            .read()
            .decode()
        )
        assert "Dashboard" in home and "employee_attrition" in home
        # Search on SQLite's FTS5 backend: a prefix, a typo, and a facet filter.
        found = opener.open(f"{base}/search/?q=tenur").read().decode()
        assert "<mark>tenur</mark>e" in found and 'data-facet="kind"' in found
        typo = opener.open(f"{base}/search/?q=satisfacton").read().decode()
        assert "overall_<mark>satisfaction</mark>" in typo or "overall_satisfaction" in typo
        services = opener.open(f"{base}/search/?q=attrition&kind=feature_service").read().decode()
        assert "attrition_model_v1" in services and 'data-kind="feature_view"' not in services
        tagged = json.load(opener.open(f"{base}/api/v1/feature-views/?tag=domain:people"))
        names = {v["name"] for v in tagged["results"]}
        assert "employee_features" in names and "department_features" not in names
        suggest = opener.open(f"{base}/search/suggest/?q=tenu").read().decode()
        assert "<mark>tenu</mark>re" in suggest
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        opener.open(
            urllib.request.Request(
                f"{base}/jobs/start/sync/",
                data=urllib.parse.urlencode({"csrfmiddlewaretoken": csrf}).encode(),
                headers={"Referer": base},
            )
        ).read()

        db = Path(environ["PORTAL_VAR_DIR"]) / "portal.sqlite3"
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT status, celery_task_id FROM jobs_jobrun WHERE kind='sync'").fetchone()
            status = row and row[0]
            if status in {"succeeded", "failed"}:
                break
            time.sleep(0.5)
        worker_tail = (logs / "worker.log").read_text(errors="replace")[-3000:]
        assert status == "succeeded", f"sync job ended as {status}; worker log:\n{worker_tail}"
        assert row[1]  # executed by the worker process, through the SQLite broker
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        web_log.close()
        worker_log.close()
