"""The train/serve loop through the Feature Portal, made provably consistent by the model contract.

    python feature_repo/examples/train_and_serve.py all --portal http://127.0.0.1:8000 \
        --token fpt_... --operator-token fpt_... --entities 101,102,103

Steps (each is also a subcommand):
  train        Build a training dataset for attrition_model_v1 through the portal (an entity file of
               HR snapshots with a label: "leaves within 90 days"), download it, train a small
               scikit-learn classifier on the feature columns in contract order, and save the model
               with the contract (entries + hash). Registers the model against the service, pinning
               the hash.
  materialize  Ask the portal to materialize the service's views up to --as-of (operator token).
  serve        At serving time: verify the saved hash against the portal (a mismatch stops here, with
               the diff), read the service online with Feast, and build each entity's vector by the
               contract's columns -- never `list(features.values())`, whose order within a view is
               Feast 0.67's string-hash order and changes with PYTHONHASHSEED. Prints one JSON line.
  all          train, materialize, serve.

Needs `pip install 'feature-portal[examples]'` (scikit-learn). Serving reads Feast directly, as a
model server does: --repo/--yaml name the feature_store YAML (its ${...} placeholders come from the
environment, e.g. FEAST_REGISTRY_URL and FEAST_REDIS_CONNECTION_STRING in the services profile).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

SERVICE = "attrition_model_v1"
PROJECT = "employee_attrition"
HORIZON = timedelta(days=90)
REPO = Path(__file__).resolve().parents[1]


class Portal:
    """The few portal API calls the loop needs (token auth, errors raised with the portal's message)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError):
                message = response.text[:500]
            raise SystemExit(f"portal: {method} {path} -> {response.status_code}: {message}")
        return response

    def wait(self, job_id: int, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.call("GET", f"/jobs/{job_id}/").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                if job["status"] != "succeeded":
                    raise SystemExit(f"portal job {job_id} {job['status']}: {job['error']}")
                return job
            time.sleep(0.5)
        raise SystemExit(f"portal job {job_id} did not finish in {timeout:.0f} s")


def entity_rows(repo: Path, as_of: datetime) -> Any:
    """One row per HR snapshot of an active employee before as_of - 90 days; label: left within 90 days."""
    import pandas as pd

    hr = pd.read_parquet(
        repo / "data" / "employee_attrition.parquet", columns=["employee_id", "event_timestamp", "is_active"]
    )
    left_at = hr[hr.is_active == 0].groupby("employee_id").event_timestamp.min()
    rows = hr[(hr.is_active == 1) & (hr.event_timestamp <= pd.Timestamp(as_of - HORIZON))].copy()
    leaves = rows.employee_id.map(left_at)
    rows["left_within_90d"] = (
        leaves.notna() & (leaves > rows.event_timestamp) & (leaves <= rows.event_timestamp + HORIZON)
    ).astype("int64")
    return rows[["employee_id", "event_timestamp", "left_within_90d"]].reset_index(drop=True)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Dataset through the portal → classifier on the contract's columns → model + contract saved."""
    import io

    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    portal = Portal(args.portal, args.token)
    rows = entity_rows(args.repo, args.as_of)
    upload = io.BytesIO()
    rows.to_parquet(upload, index=False)
    job = portal.call(
        "POST",
        "/training-datasets/",
        data={"project": PROJECT, "feature_service": SERVICE},
        files={"entity_file": ("entities.parquet", upload.getvalue(), "application/vnd.apache.parquet")},
    ).json()
    result = portal.wait(job["id"])["result"]
    dataset = portal.call("GET", f"/training-datasets/{result['dataset']}/").json()
    table = pd.read_parquet(
        io.BytesIO(portal.call("GET", f"/training-datasets/{dataset['id']}/download/?file=parquet").content)
    )
    columns = [e["column"] for e in dataset["contract"]]  # the model's input order: the contract's
    assert list(table.columns[-len(columns) :]) == columns, "the dataset's feature columns are in contract order"
    usable = table.dropna(subset=columns)
    model = LogisticRegression(max_iter=1000).fit(usable[columns].to_numpy(dtype="float64"), usable["left_within_90d"])
    args.out.mkdir(parents=True, exist_ok=True)
    saved = {
        "contract_hash": dataset["contract_hash"],
        "contract": dataset["contract"],
        "service": SERVICE,
        "project": PROJECT,
    }
    joblib.dump({"model": model, **saved}, args.out / "model.joblib")
    (args.out / "contract.json").write_text(json.dumps(saved, indent=2))
    portal.call(
        "POST",
        "/models/",
        json={
            "project": PROJECT,
            "service": SERVICE,
            "name": args.model_name,
            "version": args.model_version,
            "owner": "people-analytics",
            "description": f"Trained by train_and_serve.py on training dataset {dataset['name']}.",
            "contract_hash": dataset["contract_hash"],
        },
    )
    summary = {
        "dataset": dataset["name"],
        "rows": len(table),
        "trained_on": len(usable),
        "columns": columns,
        "contract_hash": dataset["contract_hash"],
        "accuracy": float(model.score(usable[columns].to_numpy(dtype="float64"), usable["left_within_90d"])),
    }
    print(json.dumps({"step": "train", **summary}), flush=True)
    return summary


def materialize(args: argparse.Namespace) -> None:
    """The service's view, materialized through the portal over the 30 days up to --as-of."""
    portal = Portal(args.portal, args.operator_token or args.token)
    job = portal.call(
        "POST",
        "/jobs/",
        json={
            "kind": "materialize",
            "project": PROJECT,
            "views": ["employee_features"],
            "mode": "range",
            "start": (args.as_of - timedelta(days=30)).isoformat(),
            "end": args.as_of.isoformat(),
        },
    ).json()
    portal.wait(job["id"])
    print(json.dumps({"step": "materialize", "job": job["id"]}), flush=True)


def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Verify the pinned contract, then build each vector by the contract's columns from Feast's online response."""
    import joblib

    saved = joblib.load(args.out / "model.joblib")
    portal = Portal(args.portal, args.token)
    verdict = portal.call(
        "POST",
        f"/projects/{saved['project']}/feature-services/{saved['service']}/contract/verify/",
        json={"hash": saved["contract_hash"], "entries": saved["contract"]},
    ).json()
    if verdict["result"] != "match":
        print(json.dumps({"step": "serve", "verify": verdict}), flush=True)
        print(f"contract mismatch: the service's vector changed since training: {verdict['diff']}", file=sys.stderr)
        raise SystemExit(3)
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(args.repo), fs_yaml_file=args.repo / args.yaml)
    entity_ids = [int(e) for e in args.entities.split(",")]
    online = store.get_online_features(
        features=store.get_feature_service(saved["service"]),
        entity_rows=[{"employee_id": e} for e in entity_ids],
        full_feature_names=True,
    ).to_dict()
    columns = [e["column"] for e in saved["contract"]]
    naive_order = [k for k in online if k != "employee_id"]  # what list(features.values()) would feed the model
    vectors = [[online[c][i] for c in columns] for i in range(len(entity_ids))]
    naive = [[online[c][i] for c in naive_order] for i in range(len(entity_ids))]
    model = saved["model"]
    out = {
        "step": "serve",
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "verify": verdict["result"],
        "entities": entity_ids,
        "contract_order": columns,
        "naive_order": naive_order,
        "vectors": vectors,
        "naive_vectors": naive,
        "predictions": [float(p) for p in model.predict_proba(vectors)[:, 1]],
    }
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["train", "materialize", "serve", "all"])
    parser.add_argument("--portal", default=os.environ.get("PORTAL_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("PORTAL_TOKEN", ""), help="read + propose scopes")
    parser.add_argument("--operator-token", default=os.environ.get("PORTAL_OPERATOR_TOKEN", ""), help="operate scope")
    parser.add_argument("--repo", type=Path, default=REPO, help="the Feast repo (serving reads it online)")
    parser.add_argument("--yaml", default="feature_store.yaml", help="the feature_store YAML inside --repo")
    parser.add_argument("--out", type=Path, default=Path("var/example-model"), help="where the model is saved")
    parser.add_argument(
        "--as-of",
        type=lambda s: (
            datetime.fromisoformat(s).replace(tzinfo=UTC)
            if "+" not in s and "Z" not in s
            else datetime.fromisoformat(s)
        ),
        default=datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        help="the 'now' of the data (default today 00:00 UTC)",
    )
    parser.add_argument("--entities", default="", help="employee ids to score, comma-separated")
    parser.add_argument("--model-name", default="attrition-example")
    parser.add_argument("--model-version", default="1")
    args = parser.parse_args(argv)
    if args.step in ("train", "all"):
        train(args)
    if args.step in ("materialize", "all"):
        materialize(args)
    if args.step in ("serve", "all"):
        if not args.entities:
            raise SystemExit("serve needs --entities, e.g. --entities 101,102")
        serve(args)


if __name__ == "__main__":
    main()
