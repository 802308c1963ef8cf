"""Benchmark: a training dataset for attrition_model_v1 over N entity rows, portal versus Feast, same run.

    python bench/training.py --rows 200000            (prints one JSON object as its last line)
    python bench/training.py --markdown bench/results/training.json

Builds a copy of the demo repo (file registry; the offline store is Feast's file store either way) with
enough employees for N distinct entity rows, writes an entity parquet of N rows (half at HR snapshot
times, half at random times, so some rows have no value within the 7-day TTL) and measures, each in its
own process so peak memory is its own:
  feast    FeatureStore.get_historical_features(entity_df, the service, full_feature_names=True).to_df()
  portal   jobs.services.training.dataset_build: the entity rows checked and normalised, Feast's join per
           projection, the rows' order restored, parquet written (zstd), schema and null rates computed
Both time from the entity parquet on disk to the result (Feast's: a DataFrame in memory; the portal's:
the dataset's files written) and exclude starting Python and importing Feast. Peak memory is the
process's max RSS. The parent then compares the two results row by row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
END = datetime(2026, 11, 20, tzinfo=UTC)
SERVICE = "attrition_model_v1"


def _env(repo: Path, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "FEAST_REGISTRY_URL"}}
    env.update(
        {
            "DJANGO_SECRET_KEY": "bench",
            "PORTAL_VAR_DIR": str(var),
            "FEAST_REPO_PATH": str(repo),
            "FEAST_FS_YAML": "feature_store.yaml",
            "PORTAL_TRAINING_STORAGE_URL": str(var / "datasets"),
            "FEAST_NO_PROGRESS": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def prepare(rows: int, work: Path) -> dict[str, Any]:
    """Data, `feast apply` (file registry), and the entity parquet of `rows` rows."""
    import numpy as np
    import pandas as pd

    repo = work / "feature_repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__", "examples"))
    employees = max(1000, rows // 2)
    subprocess.run(
        [sys.executable, "-m", "feature_repo.generate", "--employees", str(employees), "--years", "1"]
        + ["--end", END.date().isoformat(), "--out", str(repo / "data")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    source = pd.read_parquet(repo / "data" / "employee_attrition.parquet", columns=["employee_id", "event_timestamp"])
    rng = np.random.default_rng(11)
    half = rows // 2
    at_snapshots = source.iloc[rng.choice(len(source), size=half, replace=False)]
    ids = rng.choice(source.employee_id.unique(), size=rows - half)
    random_times = pd.Timestamp(END) - pd.to_timedelta(rng.integers(0, 365 * 86400, size=rows - half), unit="s")
    entities = pd.concat(
        [at_snapshots, pd.DataFrame({"employee_id": ids, "event_timestamp": random_times})], ignore_index=True
    )
    entities = entities.drop_duplicates(["employee_id", "event_timestamp"]).reset_index(drop=True)
    entities["label"] = rng.integers(0, 2, size=len(entities))
    entities.to_parquet(work / "entities.parquet", index=False)
    feast = Path(sys.executable).with_name("feast")
    subprocess.run(
        [str(feast), "-c", str(repo), "-f", str(repo / "feature_store.yaml"), "apply"],
        env=_env(repo, work / "var"),
        check=True,
        capture_output=True,
    )
    return {"offline_rows": len(source), "employees": employees, "entity_rows": len(entities)}


def measure_feast(work: Path) -> dict[str, Any]:
    """In this (child) process: Feast's own get_historical_features for the service."""
    import pandas as pd
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(work / "feature_repo"))
    service = store.get_feature_service(SERVICE)
    started = time.perf_counter()
    entity_df = pd.read_parquet(work / "entities.parquet")
    df = store.get_historical_features(entity_df=entity_df, features=service, full_feature_names=True).to_df()
    seconds = time.perf_counter() - started
    df.to_parquet(work / "feast.parquet", index=False)  # for the comparison, outside the timing
    return {
        "seconds": seconds,
        "rows": len(df),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_portal(work: Path) -> dict[str, Any]:
    """In this (child) process: the portal's build of the same dataset (the worker's code, no database)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    import pyarrow.parquet as pq

    from catalog import feast_gateway
    from catalog.contracts import contract_for_vector
    from jobs.services.dataset_storage import dataset_storage
    from jobs.services.training import dataset_build
    from jobs.services.training_input import DatasetTarget, normalize_entities

    repo = feast_gateway.governed_repos()[0]
    contract = contract_for_vector(
        [
            (v.feature_view, v.view_alias, v.feature, v.dtype)
            for v in feast_gateway.service_vector(repo, feature_service=SERVICE)
        ]
    )
    target = DatasetTarget(
        project="employee_attrition",
        feature_service=SERVICE,
        service_version=1,
        features=contract.references,
        contract=contract,
        join_keys={"employee_id": "Int64"},
        request_fields={},
        entity_views=["employee_features"],
    )
    started = time.perf_counter()
    table = normalize_entities(pq.read_table(work / "entities.parquet"), target)
    built = dataset_build(
        repo=repo,
        storage=dataset_storage(),
        directory="bench",
        entity_table=table,
        contract=contract,
        feature_service=SERVICE,
        features=contract.references,
        join_keys=["employee_id"],
        metadata={"dataset": "bench"},
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "feast_seconds": built.feast_seconds,
        "rows": built.rows,
        "chunks": built.chunks,
        "parquet_mib": built.files["parquet"]["bytes"] / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def compare(work: Path) -> dict[str, Any]:
    """Row by row: Feast's result and the portal's agree on every row Feast returned."""
    import numpy as np
    import pandas as pd

    feast = pd.read_parquet(work / "feast.parquet")
    portal = pd.read_parquet(work / "var" / "datasets" / "bench" / "data.parquet")
    keys = ["employee_id", "event_timestamp"]
    merged = feast.merge(portal, on=keys, suffixes=("feast_api", "_portal"), how="inner")
    features = [c for c in portal.columns if "__" in c]
    same = all(
        np.allclose(
            merged[f"{c}feast_api"].to_numpy("float64"), merged[f"{c}_portal"].to_numpy("float64"), equal_nan=True
        )
        for c in features
    )
    return {
        "rows_feast_returned": len(feast),
        "rows_portal_returned": len(portal),
        "rows_compared": len(merged),
        "values_identical": bool(same),
        "portal_columns_in_contract_order": list(portal.columns[-len(features) :]) == features,
    }


def _child(mode: str, work: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--work", str(work)],
        env=_env(work / "feature_repo", work / "var"),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{result.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def markdown(path: Path) -> str:
    """The README table for a results file."""
    r = json.loads(path.read_text())
    f, p = r["feast"], r["portal"]
    lines = [
        (
            f"Training dataset for `{SERVICE}` over {r['entity_rows']:,} entity rows ({r['offline_rows']:,} offline rows, "
            f"{r['host']}, {r['date']}; {r['cores']} cores).\n"
        ),
        "| | rows out | time | rows/s | peak RSS |",
        "|---|---|---|---|---|",
        (
            f"| Feast `get_historical_features(...).to_df()` | {f['rows']:,} | {f['seconds']:.2f} s | "
            f"{f['rows_per_s']:,.0f} | {f['max_rss_mib']:,.0f} MiB |"
        ),
        (
            f"| portal (`dataset_build`: checks, join, parquet, stats) | {p['rows']:,} | {p['seconds']:.2f} s | "
            f"{p['rows_per_s']:,.0f} | {p['max_rss_mib']:,.0f} MiB |"
        ),
        f"| ratio portal / Feast (goal ≤ 1.1×) | | **{r['time_ratio']:.2f}×** | | {r['memory_ratio']:.2f}× |",
        "",
        (
            f"Of the portal's time, {p['feast_seconds']:.2f} s is Feast's join. Feast's file offline store returned "
            f"{r['check']['rows_feast_returned']:,} of {r['entity_rows']:,} rows (it drops rows with no value within the TTL); "
            f"the portal returned all {r['check']['rows_portal_returned']:,}, with nulls there, and identical values on the "
            f"{r['check']['rows_compared']:,} rows both have: {r['check']['values_identical']}."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--child", choices=["feast", "portal"])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if args.markdown:
        print(markdown(args.markdown))
        return
    if args.child == "feast":
        print(json.dumps(measure_feast(args.work)))
        return
    if args.child == "portal":
        print(json.dumps(measure_portal(args.work)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        (work / "var").mkdir()
        data = prepare(args.rows, work)
        feast = _child("feast", work)
        portal = _child("portal", work)
        check = compare(work)
    for r in (feast, portal):
        r["rows_per_s"] = data["entity_rows"] / r["seconds"]
    print(
        json.dumps(
            {
                "benchmark": "training_dataset",
                "rows_requested": args.rows,
                **data,
                "feast": feast,
                "portal": portal,
                "time_ratio": portal["seconds"] / feast["seconds"],
                "memory_ratio": portal["max_rss_mib"] / feast["max_rss_mib"],
                "check": check,
                "host": platform.node() or "local",
                "date": f"{datetime.now(UTC):%Y-%m-%d}",
                "cores": os.cpu_count(),
                "end": (END - timedelta(0)).isoformat(),
            }
        )
    )


if __name__ == "__main__":
    main()
