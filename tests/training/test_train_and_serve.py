"""The train/serve loop, run as the example runs it: train through the portal, serve under several
PYTHONHASHSEED values. Feast's naive online order changes between them; the contract-ordered vector
does not, equals the training columns and, within the TTL, the offline row at 'now'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.contracts import contract_hash
from catalog.models import ModelConsumer
from jobs.models import JobRun, TrainingDataset
from jobs.services.training import training_dataset_start
from tests.conftest import wait_for_terminal
from tests.training.conftest import DATA_END, PROJECT, V1_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "feature_repo" / "examples" / "train_and_serve.py"
SEEDS = ["0", "1", "2"]
REPIN = (  # rewrite the saved model's pinned contract (as if it had been trained on another vector)
    "import joblib, json, sys; p = sys.argv[1]; m = joblib.load(p); "
    "m['contract'] = json.loads(sys.argv[2]); m['contract_hash'] = sys.argv[3]; joblib.dump(m, p)"
)


def example(step: str, *args: str, env_: dict[str, str], seed: str = "0") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), step, *args],
        env={**env_, "PYTHONHASHSEED": seed},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"example failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}"
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_the_loop_serves_the_training_columns_whatever_the_hash_seed(
    live_server: Any,
    synced: feast_gateway.RepoRef,
    proposer: User,
    operator: User,
    make_token: Any,
    celery_worker: Any,
    employees: pd.DataFrame,
    storage_dir: Path,
    tmp_path: Path,
) -> None:
    common = [
        "--portal",
        live_server.url,
        "--repo",
        str(synced.path),
        "--yaml",
        synced.yaml_path.name,
        "--out",
        str(tmp_path / "model"),
        "--as-of",
        DATA_END.isoformat(),
    ]
    environ = {**feast_gateway.cli_env(synced), "PYTHONWARNINGS": "ignore"}
    token = make_token(proposer, ["read", "propose"])
    trained = finish(example("train", *common, "--token", token, env_=environ))
    assert trained["columns"] == V1_COLUMNS and trained["trained_on"] > 100
    consumer = ModelConsumer.objects.get(name="attrition-example")
    assert consumer.contract_hash == trained["contract_hash"]  # the model pins the contract it was trained on
    dataset = TrainingDataset.objects.get(name=trained["dataset"])
    columns = pq.read_schema(storage_dir / PROJECT / dataset.name / "data.parquet").names
    assert columns[-len(V1_COLUMNS) :] == trained["columns"]
    finish(
        example(
            "materialize",
            *common,
            "--token",
            token,
            "--operator-token",
            make_token(operator, ["read", "operate"]),
            env_=environ,
        )
    )

    latest = (
        employees[employees.event_timestamp <= DATA_END]
        .sort_values("event_timestamp")
        .drop_duplicates("employee_id", keep="last")
    )
    active = latest[(latest.is_active == 1) & (latest.event_timestamp > DATA_END - pd.Timedelta(days=7))]
    entities = [int(e) for e in active.employee_id.iloc[:3]]
    serving = [
        example("serve", *common, "--token", token, "--entities", ",".join(map(str, entities)), env_=environ, seed=s)
        for s in SEEDS
    ]
    results = [finish(p) for p in serving]
    assert [r["pythonhashseed"] for r in results] == SEEDS and {r["verify"] for r in results} == {"match"}
    naive_orders = {tuple(r["naive_order"]) for r in results}
    assert len(naive_orders) > 1, "Feast's online order did not change with PYTHONHASHSEED"
    assert all(sorted(o) == sorted(V1_COLUMNS) for o in naive_orders)
    assert {tuple(r["contract_order"]) for r in results} == {tuple(trained["columns"])}
    vectors = results[0]["vectors"]
    assert all(r["vectors"] == vectors for r in results)
    assert all(r["predictions"] == results[0]["predictions"] for r in results)
    assert any(r["naive_vectors"] != vectors for r in results)  # the naive vector would have been shuffled

    # Within the TTL the served vector is the offline row at 'now' (a dataset built at DATA_END).
    run = training_dataset_start(
        actor=proposer,
        project=PROJECT,
        feature_service="attrition_model_v1",
        entities={"employee_id": entities, "event_timestamp": [DATA_END.isoformat()] * len(entities)},
    )
    run = wait_for_terminal(run)  # the test's Celery worker runs it (a direct call here would race it)
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    offline = pq.read_table(storage_dir / PROJECT / TrainingDataset.objects.get(job_run=run).name / "data.parquet")
    rows = offline.select(V1_COLUMNS).to_pandas().to_numpy(dtype="float64")
    assert np.allclose(np.array(vectors, dtype="float64"), rows)

    # A model pinned to another contract (here: the same features in another order) is refused at
    # serving time, with what moved.
    saved = json.loads((tmp_path / "model" / "contract.json").read_text())
    swapped = [saved["contract"][1], saved["contract"][0], *saved["contract"][2:]]
    digest = contract_hash([(e["feature_view"], e["view_alias"], e["feature"], e["dtype"]) for e in swapped])
    subprocess.run(
        [
            sys.executable,
            "-c",
            REPIN,
            str(tmp_path / "model" / "model.joblib"),
            json.dumps(swapped),
            digest,
        ],
        check=True,
    )
    refused = example("serve", *common, "--token", token, "--entities", str(entities[0]), env_=environ)
    out, err = refused.communicate(timeout=120)
    assert refused.returncode == 3 and "contract mismatch" in err
    verdict = json.loads(out.strip().splitlines()[-1])["verify"]
    assert verdict["result"] == "mismatch" and verdict["known_version"] is None
    assert verdict["diff"] == [
        {"change": "moved", "reference": "employee_features:salary_band", "from_index": 0, "to_index": 1},
        {"change": "moved", "reference": "employee_features:tenure", "from_index": 1, "to_index": 0},
    ]
