"""Training dataset jobs end to end: the API, a real Celery worker, Feast's join, the files, the pages."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.test import Client

from catalog import feast_gateway
from catalog.contracts import contract_for_service
from catalog.models import AuditEvent, CatalogObject, Team
from jobs.models import JobRun, TrainingDataset
from tests.conftest import wait_for_terminal
from tests.training.conftest import DATA_END, PROJECT, V1_COLUMNS, files_under


def _entity_csv(employees: pd.DataFrame, n: int = 40) -> tuple[bytes, pd.DataFrame]:
    """Entity rows at snapshot times and in between (some outside the TTL), with a label column."""
    ids = sorted(employees.employee_id.unique())[:n]
    rows = []
    for i, employee_id in enumerate(ids):
        when = DATA_END - timedelta(days=3 + 11 * (i % 9), hours=i)
        rows.append({"employee_id": employee_id, "event_timestamp": when.isoformat(), "left": i % 2})
    frame = pd.DataFrame(rows)
    return frame.to_csv(index=False).encode(), frame


def test_a_service_dataset_is_built_in_contract_order_by_a_worker(
    client: Client,
    proposer: User,
    viewer: User,
    synced: feast_gateway.RepoRef,
    employees: pd.DataFrame,
    storage_dir: Path,
    celery_worker: Any,
) -> None:
    data, frame = _entity_csv(employees)
    client.force_login(proposer)
    response = client.post(
        "/api/v1/jobs/",
        {
            "kind": "training_dataset",
            "project": PROJECT,
            "feature_service": "attrition_model_v1",
            "entity_file": io.BytesIO(data),
            "name": "churn-train",
        },
    )
    assert response.status_code == 202, response.content
    run = wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    dataset = TrainingDataset.objects.get(job_run=run)
    service = CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name="attrition_model_v1")
    contract = contract_for_service(service)
    assert dataset.status == "ready" and dataset.name == "churn-train"
    assert dataset.contract_hash == contract.hash == run.result["contract_hash"]
    table = pq.read_table(storage_dir / PROJECT / "churn-train" / "data.parquet")
    assert (
        table.column_names
        == ["employee_id", "event_timestamp", "left", *V1_COLUMNS]
        == [c["name"] for c in dataset.columns]
    )
    assert table.column("employee_id").to_pylist() == frame.employee_id.tolist()  # the entity file's row order
    assert table.column("left").to_pylist() == frame["left"].tolist()
    assert dataset.row_count == table.num_rows == len(frame)
    assert dataset.min_event_timestamp == pd.Timestamp(frame.event_timestamp.min()).to_pydatetime()
    csv = pd.read_csv(storage_dir / PROJECT / "churn-train" / "data.csv")
    assert list(csv.columns) == table.column_names and len(csv) == len(frame)
    document = json.loads((storage_dir / PROJECT / "churn-train" / "contract.json").read_text())
    assert document["hash"] == contract.hash and document["feature_columns"] == V1_COLUMNS
    nulls = {c["name"]: c["null_rate"] for c in dataset.columns}
    assert 0 < nulls["employee_features__tenure"] < 1  # rows between monthly snapshots fall outside the 7-day TTL
    assert nulls["employee_features__tenure"] == pytest.approx(
        table["employee_features__tenure"].null_count / len(frame)
    )
    saved = feast_gateway.saved_dataset_get(synced, name="churn-train")
    assert saved is not None and saved["path"] == str(storage_dir / PROJECT / "churn-train" / "data.parquet")
    assert saved["features"] == contract.references and saved["join_keys"] == ["employee_id"]
    assert saved["tags"]["contract_hash"] == contract.hash
    assert not files_under(storage_dir / "_uploads")  # the upload is gone once the dataset is built
    assert AuditEvent.objects.filter(action="training_dataset.built", object_id=str(dataset.pk)).exists()

    # The page: schema, null rates, contract, first rows and downloads for the creator.
    page = client.get(f"/jobs/datasets/{dataset.pk}/").content.decode()
    assert contract.hash in page and 'id="dataset-schema"' in page and 'id="dataset-preview"' in page
    download = client.get(f"/jobs/datasets/{dataset.pk}/download/parquet/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith(
        'attachment; filename="churn-train'
    )
    assert pq.read_table(io.BytesIO(b"".join(download.streaming_content))).equals(table)
    api = client.get(f"/api/v1/training-datasets/{dataset.pk}/download/?file=contract")
    assert api.status_code == 200 and json.loads(b"".join(api.streaming_content))["hash"] == contract.hash
    assert (
        client.get(f"/api/v1/training-datasets/{dataset.pk}/").json()["preview"][0]["employee_id"]
        == frame.employee_id[0]
    )
    service_page = client.get(f"/projects/{PROJECT}/feature-services/attrition_model_v1/").content.decode()
    assert 'id="service-datasets"' in service_page and f"/jobs/datasets/{dataset.pk}/" in service_page
    assert 'id="contract"' in service_page and contract.hash in service_page

    # Another signed-in user without rights to the rows sees the metadata, never the rows.
    client.force_login(viewer)
    page = client.get(f"/jobs/datasets/{dataset.pk}/").content.decode()
    assert contract.hash in page and 'id="dataset-no-access"' in page and 'id="dataset-preview"' not in page
    assert client.get(f"/jobs/datasets/{dataset.pk}/download/parquet/").status_code == 403
    assert client.get(f"/api/v1/training-datasets/{dataset.pk}/download/").status_code == 403
    assert client.get(f"/api/v1/training-datasets/{dataset.pk}/").json()["preview"] is None
    # ... until they join the team that owns the service.
    viewer.teams.add(Team.objects.get(name=service.team.name))  # type: ignore[union-attr]
    assert client.get(f"/jobs/datasets/{dataset.pk}/download/csv/").status_code == 200
