"""Bad entity input is refused before any work starts, and leaves nothing behind."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.test import Client

from catalog.exceptions import InvalidInput, NotPermitted
from jobs.models import JobRun, TrainingDataset
from jobs.services.training import training_dataset_start
from jobs.services.training_input import EntityFileTooLarge
from jobs.tasks import training_dataset_task
from tests.training.conftest import DATA_END, PROJECT, files_under

DAY = (DATA_END - timedelta(days=1)).date().isoformat()  # a day inside the data
GOOD_CSV = f"employee_id,event_timestamp\n101,{DAY}T00:00:00Z\n".encode()


def nothing_left(storage_dir: Path) -> None:
    assert not JobRun.objects.exists() and not TrainingDataset.objects.exists()
    assert files_under(storage_dir) == []


def post(client: Client, body: dict[str, Any], **extra: Any) -> Any:
    return client.post("/api/v1/jobs/", {"kind": "training_dataset", "project": PROJECT, **body}, **extra)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (f"event_timestamp,label\n{DAY}T00:00:00Z,1\n".encode(), "no join key column employee_id"),
        (b"employee_id,label\n101,1\n", "no event_timestamp column"),
        (b"employee_id,event_timestamp\n", "the entity rows are empty"),
        (b"", "the entity file is empty"),
        (b"employee_id,event_timestamp\n101,yesterday\n", "'yesterday' (row 1) is not an ISO 8601 date-time"),
        (f"employee_id,event_timestamp\nabc,{DAY}T00:00:00Z\n".encode(), "not a readable csv file"),
        (
            f"employee_id,event_timestamp\n101,{DAY}\n,{DAY}\n".encode(),
            "employee_id is empty in 1 row(s) (first: row 2)",
        ),
        (f"employee_id,event_timestamp,employee_features__tenure\n101,{DAY},1\n".encode(), "would clash"),
    ],
    ids=["no-join-key", "no-timestamp", "zero-rows", "empty-file", "bad-time", "bad-key", "null-key", "clash"],
)
def test_a_bad_entity_file_is_a_400_naming_the_problem(
    client: Client, proposer: User, synced: Any, storage_dir: Path, upload: bytes, message: str
) -> None:
    client.force_login(proposer)
    response = post(client, {"feature_service": "attrition_model_v1", "entity_file": io.BytesIO(upload)})
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["message"]
    nothing_left(storage_dir)


def test_an_empty_parquet_file_and_an_unknown_feature_are_refused(
    client: Client, proposer: User, synced: Any, storage_dir: Path
) -> None:
    client.force_login(proposer)
    empty = io.BytesIO()
    pq.write_table(
        pa.table({"employee_id": pa.array([], pa.int64()), "event_timestamp": pa.array([], pa.timestamp("us"))}), empty
    )
    empty.seek(0)
    empty.name = "entities.parquet"
    response = post(client, {"feature_service": "attrition_model_v1", "entity_file": empty})
    assert response.status_code == 400 and "empty" in response.json()["error"]["message"]
    response = post(
        client,
        {"features": ["employee_features:tenure", "employee_features:nope"], "entity_file": io.BytesIO(GOOD_CSV)},
    )
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "unknown feature employee_features:nope: employee_features has no feature nope"
    )
    response = post(client, {"feature_service": "nope", "entity_file": io.BytesIO(GOOD_CSV)})
    assert response.status_code == 400 and "nope" in response.json()["error"]["message"]
    response = post(client, {"feature_service": "attrition_model_v1"})
    assert response.status_code == 400 and "exactly one of" in response.json()["error"]["message"]
    response = client.post(
        "/api/v1/jobs/",
        {
            "kind": "training_dataset",
            "project": PROJECT,
            "feature_service": "attrition_model_v2",
            "entity_timestamps": [f"{DAY}T00:00:00Z"],
        },
        content_type="application/json",
    )
    assert response.status_code == 400 and "request data" in response.json()["error"]["message"]
    upload = io.BytesIO(b"x")
    upload.name = "entities.xlsx"
    assert post(client, {"feature_service": "attrition_model_v1", "entity_file": upload}).status_code == 400
    nothing_left(storage_dir)


def test_a_2_gb_upload_is_refused_from_its_size_before_it_is_read(
    client: Client, proposer: User, synced: Any, storage_dir: Path, tmp_path: Path
) -> None:
    two_gb = 2 * 1024**3
    client.force_login(proposer)
    # The request says it carries 2 GiB: refused from the Content-Length, before the body is parsed (the
    # body sent here is small, so a view that read it would not fail this way).
    for url in ("/api/v1/jobs/", "/api/v1/training-datasets/"):
        response = (
            post(
                client,
                {"feature_service": "attrition_model_v1", "entity_file": io.BytesIO(GOOD_CSV)},
                CONTENT_LENGTH=str(two_gb),
            )
            if url == "/api/v1/jobs/"
            else client.post(
                url,
                {"project": PROJECT, "feature_service": "attrition_model_v1", "entity_file": io.BytesIO(GOOD_CSV)},
                CONTENT_LENGTH=str(two_gb),
            )
        )
        assert response.status_code == 413, response.content
        assert response.json()["error"]["code"] == "too_large"
        assert "2.0 GiB" in response.json()["error"]["message"]
    form = client.post(
        "/jobs/datasets/new/",
        {"target": f"service:{PROJECT}/attrition_model_v1", "source": "file", "entity_file": io.BytesIO(GOOD_CSV)},
        CONTENT_LENGTH=str(two_gb),
    )
    # refused at the door (portal/middleware.py), before any view parses a byte of it
    assert form.status_code == 413 and b"2.0 GiB; at most 257.0 MiB is accepted" in form.content
    # A 2 GiB file on disk (sparse: no 2 GiB written) handed to the service: refused from its size, unread.
    sparse = tmp_path / "entities.csv"
    with sparse.open("wb") as handle:
        handle.truncate(two_gb)
    with sparse.open("rb") as handle, pytest.raises(EntityFileTooLarge):
        training_dataset_start(
            actor=proposer,
            project=PROJECT,
            feature_service="attrition_model_v1",
            entity_file=handle,
            entity_file_name="entities.csv",
            entity_file_size=os.path.getsize(sparse),
        )
        assert handle.tell() == 0
    nothing_left(storage_dir)


def test_roles_and_names_are_checked_first(proposer: User, viewer: User, synced: Any, storage_dir: Path) -> None:
    with pytest.raises(NotPermitted):
        training_dataset_start(
            actor=viewer, project=PROJECT, feature_service="attrition_model_v1", entity_timestamps=[DAY]
        )
    with pytest.raises(InvalidInput, match="must be a slug"):
        training_dataset_start(
            actor=proposer,
            project=PROJECT,
            feature_service="attrition_model_v1",
            entity_timestamps=[DAY],
            name="a b",
        )
    nothing_left(storage_dir)


def test_a_job_whose_contract_changed_since_the_request_fails_and_keeps_nothing(
    proposer: User, synced: Any, storage_dir: Path
) -> None:
    run = training_dataset_start(
        actor=proposer,
        project=PROJECT,
        feature_service="attrition_model_v1",
        entity_file=io.BytesIO(GOOD_CSV),
        entity_file_name="e.csv",
        entity_file_size=len(GOOD_CSV),
    )
    assert run.status == JobRun.Status.QUEUED
    assert len(files_under(storage_dir / "_uploads")) == 1
    dataset = TrainingDataset.objects.get(job_run=run)
    dataset.contract = list(reversed(dataset.contract))  # what the catalog said when the request came in
    dataset.save(update_fields=["contract"])
    with pytest.raises(InvalidInput, match="changed in the registry since the request"):
        training_dataset_task(job_run_id=run.pk)
    run.refresh_from_db()
    dataset.refresh_from_db()
    assert run.status == JobRun.Status.FAILED and dataset.status == TrainingDataset.Status.FAILED
    assert files_under(storage_dir) == []  # neither the upload nor a partial dataset is left


def test_inline_rows_are_typed_and_deduplicated(proposer: User, synced: Any, storage_dir: Path) -> None:
    run = training_dataset_start(
        actor=proposer,
        project=PROJECT,
        feature_service="attrition_model_v1",
        entities={
            "employee_id": ["101", "101", "102"],
            "event_timestamp": [f"{DAY}T00:00:00", f"{DAY}T00:00:00+00:00", f"{DAY}T01:00:00+01:00"],
        },
    )
    assert run.params["entity_rows"] == 2  # 101 twice at the same time (naive means UTC) is one row
    table = pq.read_table(storage_dir / run.params["upload"])
    assert table.schema.field("employee_id").type == pa.int64()
    assert str(table.schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    assert pd.Series(table["event_timestamp"].to_pylist()).nunique() == 1


def test_a_dataset_whose_worker_died_is_failed_and_cleaned_by_the_sweeper(
    proposer: User, synced: Any, storage_dir: Path
) -> None:
    from jobs.tasks import sweep_stale_runs_task

    run = training_dataset_start(
        actor=proposer,
        project=PROJECT,
        feature_service="attrition_model_v1",
        entity_file=io.BytesIO(GOOD_CSV),
        entity_file_name="e.csv",
        entity_file_size=len(GOOD_CSV),
    )
    dataset = TrainingDataset.objects.get(job_run=run)
    partial = storage_dir / PROJECT / dataset.name
    partial.mkdir(parents=True)
    (partial / "data.parquet").write_bytes(b"PAR1 half written")
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.FAILED)  # what the sweeper does to a dead run
    assert sweep_stale_runs_task()["training_datasets"] == 1
    dataset.refresh_from_db()
    assert dataset.status == TrainingDataset.Status.FAILED and files_under(storage_dir) == []
