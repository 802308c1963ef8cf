"""Benchmark: the portal's materialization versus `feast materialize` (CLI) on the same data, same run.

    python bench/materialize.py --rows 500000        (prints one JSON object as its last line)

Builds a copy of the demo repo with enough employees that the range [end - 2 days, end) holds about
`--rows` snapshots, applies it into a fresh SQL registry (PostgreSQL) with the Redis online store
(database BENCH_REDIS_DB, default 15), then measures, each in its own process so peak memory is
its own:
  cli      `feast materialize START END --views employee_features` with Feast's defaults
  portal   catalog.feast_gateway.materialize_view over the same range (FEAST_ONLINE_WRITE_BATCH_SIZE
           batches, the view's materialize_filter applied)
Rows/s is rows written online / wall time of the process (both pay Feast's import); peak memory is
the process's max RSS. The online store is flushed between the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "15"))
REGISTRY_DB = "bench_materialize_registry"
END = datetime(2026, 11, 20, tzinfo=UTC)
START = END - timedelta(days=2)
PROJECT = "employee_attrition"


def _env(repo: Path, var: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "FEAST_REPO_PATH", "FEAST_FS_YAML"}
    }
    env.update(
        {
            "DJANGO_SECRET_KEY": "bench",
            "PORTAL_VAR_DIR": str(var),
            "FEAST_REPO_PATH": str(repo),
            "FEAST_FS_YAML": "feature_store.services.yaml",
            "FEAST_REGISTRY_URL": f"{PG.replace('postgresql://', 'postgresql+psycopg://')}/{REGISTRY_DB}",
            "FEAST_REDIS_CONNECTION_STRING": f"127.0.0.1:6379,db={REDIS_DB}",
            "FEAST_NO_PROGRESS": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def _redis() -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)


def _online_entities() -> int:
    return sum(1 for k in _redis().scan_iter(count=10000) if k.endswith(PROJECT.encode()))


def prepare(rows: int, work: Path) -> dict[str, Any]:
    """Data, a fresh SQL registry, `feast apply`; returns what the range holds."""
    import pandas as pd
    import psycopg

    repo = work / "feature_repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    employees = int(rows / 0.85) + 1  # ~85% are still employed and get a fresh snapshot at the end
    subprocess.run(
        [sys.executable, "-m", "feature_repo.generate", "--employees", str(employees), "--years", "1"]
        + ["--end", END.date().isoformat(), "--out", str(repo / "data")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    df = pd.read_parquet(repo / "data" / "employee_attrition.parquet", columns=["event_timestamp", "is_active"])
    window = df[(df.event_timestamp >= START) & (df.event_timestamp < END)]
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{REGISTRY_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{REGISTRY_DB}"')
    _redis().flushdb()
    feast = Path(sys.executable).with_name("feast")
    subprocess.run(
        [str(feast), "-c", str(repo), "-f", str(repo / "feature_store.services.yaml"), "apply"],
        env=_env(repo, work / "var"),
        check=True,
        capture_output=True,
    )
    return {
        "offline_rows": len(df),
        "rows_in_range": len(window),
        "active_rows_in_range": int((window.is_active == 1).sum()),
    }


def measure_cli(repo: Path, var: Path) -> dict[str, Any]:
    """In a child process: run the feast CLI once; report its wall time and the CLI's max RSS."""
    feast = Path(sys.executable).with_name("feast")
    started = time.perf_counter()
    result = subprocess.run(
        [str(feast), "-c", str(repo), "-f", str(repo / "feature_store.services.yaml"), "materialize"]
        + [START.strftime("%Y-%m-%dT%H:%M:%S"), END.strftime("%Y-%m-%dT%H:%M:%S"), "--views", "employee_features"],
        env=_env(repo, var),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"feast materialize failed:\n{result.stderr[-3000:]}")
    return {"wall_s": wall, "max_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def measure_portal(batch_size: int) -> dict[str, Any]:
    """In this (child) process: the portal's materialization of the same range."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from catalog import feast_gateway

    repo = feast_gateway.governed_repos()[0]
    started = time.perf_counter()
    chunks = feast_gateway.materialize_view(
        repo, view="employee_features", start=START, end=END, chunk=timedelta(days=30), batch_size=batch_size
    )
    return {
        "materialize_s": time.perf_counter() - started,
        "rows_written": sum(c.rows_written for c in chunks),
        "rows_filtered": sum(c.rows_filtered for c in chunks),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(mode: str, repo: Path, var: Path, batch_size: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--repo", str(repo), "--var", str(var)]
        + ["--batch-size", str(batch_size)],
        env=_env(repo, var),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{result.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    out.setdefault("wall_s", time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--child", choices=["cli", "portal"])
    parser.add_argument("--repo", type=Path)
    parser.add_argument("--var", type=Path)
    args = parser.parse_args()
    if args.child == "cli":
        print(json.dumps(measure_cli(args.repo, args.var)))
        return
    if args.child == "portal":
        print(json.dumps(measure_portal(args.batch_size)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-materialize-") as tmp:
        work = Path(tmp)
        (work / "var").mkdir()
        data = prepare(args.rows, work)
        repo, var = work / "feature_repo", work / "var"
        cli = _child("cli", repo, var, args.batch_size)
        cli["rows_written"] = _online_entities()
        _redis().flushdb()
        portal = _child("portal", repo, var, args.batch_size)
        portal["online_entities"] = _online_entities()
        _redis().flushdb()
    cli_rate = cli["rows_written"] / cli["wall_s"]
    portal_rate = portal["rows_written"] / portal["wall_s"]
    print(
        json.dumps(
            {
                "benchmark": "materialize",
                "rows_requested": args.rows,
                **data,
                "batch_size": args.batch_size,
                "cli": {**cli, "rows_per_s": cli_rate},
                "portal": {**portal, "rows_per_s": portal_rate},
                "speedup": portal_rate / cli_rate,
                "memory_ratio": portal["max_rss_mib"] / cli["max_rss_mib"],
            }
        )
    )


if __name__ == "__main__":
    main()
