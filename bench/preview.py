"""Benchmark: online preview latency through the portal API vs `feast serve` vs raw Redis round trips.

    python bench/preview.py [--requests 50]       (prints one JSON object as its last line)
    python bench/preview.py --markdown bench/results/preview.json   (the table for bench/results/preview.md)

Sets up the services profile on scratch databases (PostgreSQL `bench_preview_portal` and
`bench_preview_registry`, Redis database BENCH_REDIS_DB, default 14), applies and materializes a copy of
the demo repo, starts gunicorn, a Celery worker and `feast serve`, then times, for 1 and 100 entities:
  api     POST /api/v1/projects/employee_attrition/online-preview/ (token auth; the API waits for the worker)
  feast   POST /get-online-features on `feast serve` (same feature service and entities)
  redis   one pipelined HGETALL per entity key on the same Redis (the floor: a network round trip)
Latencies are wall-clock per request from this process (p50 / p95 / mean, milliseconds). The worker is
started like `bin/run` starts it (prefork pool, 2 processes); the API's wait ends when the worker's Redis
wake-up arrives (jobs.services.preview.job_run_wait). Issue 20's targets: api_1 p50 <= 15 ms and api_100
p50 <= 2 x feast_100 p50 + 10 ms. The load average is recorded: on a shared machine it moves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))
PROJECT = "employee_attrition"
SERVICE = "attrition_model_v1"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _recreate(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "FEAST_", "CELERY_"))}
    env.update(
        {
            "DJANGO_SECRET_KEY": "bench",
            "DATABASE_URL": f"{PG}/bench_preview_portal",
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "FEAST_REGISTRY_URL": f"{PG.replace('postgresql://', 'postgresql+psycopg://')}/bench_preview_registry",
            "FEAST_REDIS_CONNECTION_STRING": f"127.0.0.1:6379,db={REDIS_DB}",
            "FEAST_REPO_PATH": str(work / "feature_repo"),
            "PORTAL_VAR_DIR": str(work / "var"),
            "DJANGO_STATIC_ROOT": str(work / "static"),
            "CELERY_QUEUE": "bench-preview",
            "FEAST_NO_PROGRESS": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _wait(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.load(response)
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status}: {data}")
        return data


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def _time(n: int, call: Any) -> dict[str, float]:
    call()  # warm up
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return _stats(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--employees", type=int, default=2000)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if args.markdown:
        print(markdown(args.markdown))
        return
    load_before = os.getloadavg()[0]
    import redis

    with tempfile.TemporaryDirectory(prefix="bench-preview-") as tmp:
        work = Path(tmp)
        shutil.copytree(
            ROOT / "feature_repo", work / "feature_repo", ignore=shutil.ignore_patterns("data", "__pycache__")
        )
        subprocess.run(
            [sys.executable, "-m", "feature_repo.generate", "--employees", str(args.employees)]
            + ["--out", str(work / "feature_repo" / "data")],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        env = _env(work)
        for name in ("bench_preview_portal", "bench_preview_registry"):
            _recreate(name)
        redis.Redis(db=REDIS_DB).flushdb()
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput")
        _manage(env, "feast", "apply")
        _manage(env, "sync_registry")
        _manage(env, "materialize")
        token = _manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User; from catalog.services.tokens import api_token_create;"
            "u = User.objects.create_user('bench', password='bench-password-1');"
            "u.groups.add(Group.objects.get_or_create(name='admin')[0]);"
            "print(api_token_create(actor=u, user=u, name='bench', scopes=['read'])[1])",
        ).split()[-1]
        web, feast_port = _port(), _port()
        repo = work / "feature_repo"
        procs = [
            subprocess.Popen(
                [str(BIN / "gunicorn"), "portal.wsgi", "--bind", f"127.0.0.1:{web}", "--workers", "2"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [str(BIN / "celery"), "-A", "portal", "worker", "--concurrency", "2", "--loglevel", "WARNING"]
                + ["--without-gossip", "--without-mingle"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [str(BIN / "feast"), "-c", str(repo), "-f", str(repo / "feature_store.services.yaml"), "serve"]
                + ["--host", "127.0.0.1", "--port", str(feast_port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            _wait(f"http://127.0.0.1:{web}/healthz")
            _wait(f"http://127.0.0.1:{feast_port}/health")
            import pandas as pd

            ids = (
                pd.read_parquet(work / "feature_repo" / "data" / "employee_attrition.parquet")
                .query("is_active == 1")
                .employee_id.drop_duplicates()
                .tolist()
            )
            results: dict[str, Any] = {}
            client = redis.Redis(db=REDIS_DB)
            keys = [k for k in client.scan_iter(count=10000) if k.endswith(PROJECT.encode())]
            for n in (1, 100):
                body = {"feature_service": SERVICE, "entities": {"employee_id": [int(i) for i in ids[:n]]}}
                api = f"http://127.0.0.1:{web}/api/v1/projects/{PROJECT}/online-preview/"
                answer = _post(api, body, {"Authorization": f"Bearer {token}"})
                assert len(answer["results"]) == n, answer
                results[f"api_{n}"] = _time(
                    args.requests, lambda b=body, u=api: _post(u, b, {"Authorization": f"Bearer {token}"})
                )
                served = f"http://127.0.0.1:{feast_port}/get-online-features"
                results[f"feast_{n}"] = _time(args.requests, lambda b=body, u=served: _post(u, b, {}))

                def raw(k: list[bytes] = keys[:n]) -> None:
                    pipe = client.pipeline(transaction=False)
                    for key in k:
                        pipe.hgetall(key)
                    pipe.execute()

                results[f"redis_{n}"] = _time(args.requests, raw)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    info = {
        "host": platform.node(),
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps({"benchmark": "preview", "requests": args.requests, **info, **results}))


def markdown(path: Path) -> str:
    """The table for a results file: API vs `feast serve` vs raw Redis, against issue 20's targets."""
    r = json.loads(path.read_text())
    lines = [
        (
            f"Online preview of `{SERVICE}`, {r['requests']} requests per row ({r.get('host', '?')}, "
            f"{r.get('date', '?')}; {r.get('cores', '?')} cores; load average {r.get('load_avg_1m', '?')}).\n"
        ),
        "| entities | API p50 / p95 | `feast serve` p50 / p95 | Redis round trip p50 | target (API p50) |",
        "|---|---|---|---|---|",
    ]
    for n in (1, 100):
        api, feast, raw = r[f"api_{n}"], r[f"feast_{n}"], r[f"redis_{n}"]
        target = 15.0 if n == 1 else 2 * feast["p50_ms"] + 10
        verdict = "met" if api["p50_ms"] <= target else "not met"
        lines.append(
            f"| {n} | {api['p50_ms']:.1f} / {api['p95_ms']:.1f} ms | {feast['p50_ms']:.1f} / {feast['p95_ms']:.1f} ms | "
            f"{raw['p50_ms']:.2f} ms | ≤ {target:.1f} ms: {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
