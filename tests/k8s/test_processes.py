"""The commands the manifests run, run here: gunicorn and the Celery worker as the prod overlay starts them.

The command lines, the portal-env ConfigMap and the container env come from the rendered YAML; the
secrets are files, as the Secret volume provides them (`*_FILE`), holding this test's PostgreSQL,
Redis and Feast registry. Container paths (/var/lib/portal, /run/secrets/portal, ...) map to
temporary directories. Then /readyz must answer 200, /metrics must aggregate the gunicorn workers,
the worker's liveness probe command must pass and the worker must execute a task; `feast serve` as
the feature server Deployment runs it must serve online features; and the migrations Job's command
must be what the init containers' `migrate --check` waits for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from django.conf import settings
from django.db import connection

from tests import environment as env
from tests import online
from tests.k8s.test_manifests import SECRET_TEMPLATE, by_kind, configmap_data, container, render
from tests.test_quickstart_smoke import _free_port, _wait_http

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


class Pod:
    """Maps one rendered container onto this machine: env, paths, secrets, command line."""

    def __init__(self, docs: list[dict[str, Any]], tmp: Path, secrets: dict[str, str]) -> None:
        self.docs = docs
        self.secrets = secrets
        self.paths = {
            "/run/secrets/portal": tmp / "secrets",
            "/var/lib/portal": tmp / "var",
            "/var/run/portal-metrics": tmp / "metrics",
            "/var/run/feast-metrics": tmp / "feast-metrics",
            "/app/feature_repo": env.DEMO_REPO,
            "/app/staticfiles": Path(settings.STATIC_ROOT),
            "/tmp": tmp / "tmp",
        }
        for local in self.paths.values():
            local.mkdir(parents=True, exist_ok=True)
        for key, value in secrets.items():
            (self.paths["/run/secrets/portal"] / key).write_text(value)

    def local(self, value: str) -> str:
        """A container path (or --flag=path) as the local path."""
        flag, eq, rest = value.partition("=")
        if eq and flag.startswith("--"):
            return f"{flag}={self.local(rest)}"
        for prefix, target in self.paths.items():
            if value == prefix or value.startswith(prefix + "/"):
                return str(target) + value[len(prefix) :]
        return value

    def environ(self, c: dict[str, Any]) -> dict[str, str]:
        """Kubernetes' env for the container: envFrom ConfigMaps, then env with $(VAR) expansion."""
        configured: dict[str, str] = {}
        for source in c.get("envFrom", []):
            configured.update(configmap_data(self.docs, source["configMapRef"]["name"]))
        for item in c.get("env", []):
            if "value" in item:
                value = re.sub(r"\$\((\w+)\)", lambda m: configured.get(m.group(1), m.group(0)), item["value"])
            elif "fieldRef" in item["valueFrom"]:
                assert item["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
                value = "127.0.0.1"
            elif "configMapKeyRef" in item["valueFrom"]:
                ref = item["valueFrom"]["configMapKeyRef"]
                value = configmap_data(self.docs, ref["name"])[ref["key"]]
            else:
                value = self.secrets[item["valueFrom"]["secretKeyRef"]["key"]]
            configured[item["name"]] = value
        # Start from this machine's environment minus everything the pod configures, and minus the
        # secrets' plain variables: the portal must read them from the *_FILE files.
        inherited = {k: v for k, v in os.environ.items() if k not in configured and k not in self.secrets}
        return {**inherited, **{k: self.local(v) for k, v in configured.items()}}

    def command(self, c: dict[str, Any]) -> list[str]:
        line = [*c.get("command", []), *c.get("args", [])]
        exe = line[0]
        local_exe = sys.executable if exe == "python" else str(BIN / exe)
        return [local_exe, *(self.local(a) for a in line[1:])]


@pytest.fixture
def prod_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render("prod")) if d]


@pytest.fixture
def pod(prod_docs: list[dict[str, Any]], transactional_db: None, registry: str, tmp_path: Path) -> Pod:
    """Secrets pointing at this test's database (migrated by pytest-django), Redis and registry."""
    db = connection.settings_dict
    secrets = {
        "DJANGO_SECRET_KEY": "k8s-process-test-secret-key",
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL.url,
        "FEAST_REGISTRY_URL": registry,
        "FEAST_REDIS_CONNECTION_STRING": settings.FEAST_REDIS_CONNECTION_STRING,
        "PORTAL_METRICS_TOKEN": "k8s-process-test-metrics-token",
        "PORTAL_WEBHOOK_URL": "",
        "OIDC_RP_CLIENT_SECRET": "",
    }
    assert set(secrets) == set(yaml.safe_load(SECRET_TEMPLATE.read_text())["stringData"])
    return Pod(prod_docs, tmp_path, secrets)


@pytest.fixture
def started(pod: Pod, tmp_path: Path) -> Iterator[dict[str, Any]]:
    web_c = container(by_kind(pod.docs, "Deployment")["portal-web"], "web")
    worker_c = container(by_kind(pod.docs, "Deployment")["portal-worker"], "worker")
    port = _free_port()
    web_cmd = [f"--bind=127.0.0.1:{port}" if a.startswith("--bind=") else a for a in pod.command(web_c)]
    assert web_cmd != pod.command(web_c), "the web command should have a --bind= to replace"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    for name, cmd, c in [("web", web_cmd, web_c), ("worker", pod.command(worker_c), worker_c)]:
        logs[name] = tmp_path / f"{name}.log"
        with logs[name].open("wb") as log:
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=pod.environ(c), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "web": web_c, "worker": worker_c, "procs": procs, "logs": logs}
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _tail(logs: dict[str, Path]) -> str:
    return "\n".join(f"--- {n}\n{p.read_text(errors='replace')[-3000:]}" for n, p in logs.items())


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def test_manifest_commands_serve_readyz_and_run_tasks(started: dict[str, Any], pod: Pod) -> None:
    base, logs = started["base"], started["logs"]
    try:
        _wait_http(f"{base}/healthz", timeout=90)
    except AssertionError:
        pytest.fail(f"gunicorn did not answer:\n{_tail(logs)}")

    # The probes exactly as the manifest declares them.
    web = started["web"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        status, body = _get(base + web[probe]["httpGet"]["path"])
        assert status == 200, f"{probe} {web[probe]['httpGet']['path']}: {status} {body[:500]!r}\n{_tail(logs)}"
    status, body = _get(f"{base}/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["status"] == "ok", ready
    assert ready["checks"]["database"]["detail"] == f"postgresql {connection.settings_dict['NAME']}"
    assert ready["checks"]["broker"]["detail"].startswith("redis")
    assert ready["checks"]["feast_registry"]["detail"].startswith("sql registry")

    # /metrics needs the token from the Secret file; it sums the request histograms of all workers.
    assert _get(f"{base}/metrics")[0] == 401
    token = pod.secrets["PORTAL_METRICS_TOKEN"]
    for _ in range(6):
        _get(f"{base}/readyz")
    status, body = _get(f"{base}/metrics", {"Authorization": f"Bearer {token}"})
    assert status == 200, body[:300]
    text = body.decode()
    count = re.search(
        r'portal_http_request_duration_seconds_count\{[^}]*route="/readyz"[^}]*status="200"\} (\S+)', text
    )
    assert count and float(count.group(1)) >= 8, text[:2000]
    assert any(pod.paths["/var/run/portal-metrics"].glob("*.db")), "gunicorn workers wrote no multiprocess files"
    assert "portal_job_runs" in text

    # The worker: its liveness probe command passes once the heartbeat exists, and it runs tasks.
    worker_c = started["worker"]
    probe = pod.command({"command": worker_c["livenessProbe"]["exec"]["command"]})
    heartbeat = Path(probe[4])
    deadline = time.monotonic() + 90
    while not heartbeat.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert heartbeat.exists(), f"the worker wrote no heartbeat:\n{_tail(logs)}"
    result = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    stale = subprocess.run([*probe[:5], "0"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert stale.returncode == 1 and "old" in stale.stderr  # the probe can fail

    from portal.celery import app

    queue = configmap_data(pod.docs, next(n for n in by_kind(pod.docs, "ConfigMap") if n.startswith("portal-env-")))[
        "CELERY_QUEUE"
    ]
    outcome = app.send_task("jobs.sweep_stale_runs", queue=queue).get(timeout=90)
    assert isinstance(outcome, dict), outcome
    assert all(p.poll() is None for p in started["procs"].values()), _tail(logs)


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_feature_server_command_serves_online_features_and_metrics(pod: Pod, tmp_path: Path) -> None:
    """`feast serve` exactly as the Deployment runs it (flags valid for Feast 0.67), on the test registry.

    The registry template was materialized into this worker's Redis by the real `feast` CLI, so the
    server answers /get-online-features with values. Feast's metrics port is fixed at 8000: checked
    when that port is free (another process may hold it on a shared machine).
    """
    server = container(by_kind(pod.docs, "Deployment")["feast-feature-server"], "feature-server")
    # Its feature_store.server.yaml is the store's YAML plus `auth: {type: kubernetes}` (test_manifests checks
    # that); Kubernetes auth needs a cluster to review tokens, so here the server reads the repo's YAML, as
    # the portal's pods do, without auth.
    pod.paths["/etc/feast"] = tmp_path / "etc-feast"
    pod.paths["/etc/feast"].mkdir()
    shutil.copy(env.DEMO_REPO / "feature_store.services.yaml", tmp_path / "etc-feast" / "feature_store.server.yaml")
    port = _free_port()
    cmd = [f"--port={port}" if a.startswith("--port=") else a for a in pod.command(server)]
    cmd = ["--host=127.0.0.1" if a.startswith("--host=") else a for a in cmd]
    assert "--max-requests=0" in cmd and "--metrics" in cmd
    metrics_free = not _port_in_use(8000)
    log = tmp_path / "feature-server.log"
    base = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(cmd, cwd=ROOT, env=pod.environ(server), stdout=out, stderr=subprocess.STDOUT)

    proc = start()
    try:
        ready = False
        deadline = time.monotonic() + 180
        restarted = False
        while not ready and time.monotonic() < deadline:
            if proc.poll() is not None:
                # Feast 0.67's own boot can die on a SqlRegistry ping in a forked gunicorn worker ("can't
                # change 'autocommit' now") on a loaded machine; Kubernetes restarts the container: so does this,
                # once. Any other exit, or a second one, fails the test below with the log.
                if restarted or "can't change 'autocommit' now" not in log.read_text(errors="replace"):
                    break
                restarted, proc = True, start()
            try:
                ready = _get(base + server["readinessProbe"]["httpGet"]["path"])[0] == 200
            except OSError:  # not listening yet
                ready = False
            if not ready:
                time.sleep(0.5)
        if not ready:
            pytest.fail(f"the feature server did not become ready:\n{log.read_text(errors='replace')[-4000:]}")
        rows = online.employee_rows()
        known = [online.active_employee(rows, n) for n in range(3)]
        request = urllib.request.Request(
            f"{base}/get-online-features",
            data=json.dumps(
                {"feature_service": "attrition_model_v1", "entities": {"employee_id": [*known, 1]}}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        columns = dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))
        assert set(columns) == {"employee_id", *online.V1_ORDER}, list(columns)
        assert columns["employee_id"]["values"] == [*known, 1]
        for name in online.V1_ORDER:  # the offline rows the template materialized, value and timestamp
            column = columns[name]
            assert column["values"][:3] == [pytest.approx(float(rows.loc[e][name]), rel=1e-6) for e in known], name
            assert column["statuses"][:3] == ["PRESENT"] * 3, name
            stamps = [datetime.fromisoformat(t) for t in column["event_timestamps"][:3]]
            assert stamps == [rows.loc[e].event_timestamp.to_pydatetime() for e in known], name
            assert column["values"][3] is None, name  # employee 1 does not exist
        if metrics_free:
            # The metrics endpoint is its own server, started beside the app: it may reset a connection
            # while it binds. Retry for a while; the assertion on what it serves is unchanged.
            # Feast starts it in a child process and waits at most 5 s for it: on a loaded machine it can
            # take longer.
            deadline = time.monotonic() + 90
            while True:
                try:
                    status, text = _get("http://127.0.0.1:8000/metrics")
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        log_tail = log.read_text(errors="replace")[-4000:]
                        pytest.fail(f"Feast's metrics server never answered on :8000 ({exc}):\n{log_tail}")
                    time.sleep(0.5)
            assert status == 200 and b"feast_feature_server_request_latency_seconds" in text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_migrations_job_and_the_init_containers_that_wait_for_it(pod: Pod, tmp_path: Path) -> None:
    """On an empty database the init container's `migrate --check` fails (the pod waits); after the
    migrations Job's command it passes."""
    web = by_kind(pod.docs, "Deployment")["portal-web"]
    init = web["spec"]["template"]["spec"]["initContainers"][0]
    job = container(by_kind(pod.docs, "Job")["portal-migrate"], "migrate")
    empty = f"{connection.settings_dict['NAME']}_k8s_empty"
    with psycopg.connect(f"{env.PG}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{empty}"')
    try:
        secrets_dir = tmp_path / "empty-secrets"
        other = Pod(
            pod.docs,
            secrets_dir,
            {**pod.secrets, "DATABASE_URL": pod.secrets["DATABASE_URL"].rsplit("/", 1)[0] + f"/{empty}"},
        )

        def run(c: dict[str, Any]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                other.command(c),
                cwd=ROOT,
                env=other.environ(c),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )

        waiting = run(init)
        assert waiting.returncode != 0, "migrate --check passed on an empty database"
        migrated = run(job)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        assert "Applying" in migrated.stdout
        ready = run(init)
        assert ready.returncode == 0, ready.stderr[-3000:]
    finally:
        with psycopg.connect(f"{env.PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
