"""The corpus's training datasets: every service built by a worker, held to Feast's get_historical_features
on the rows both return (Feast's file store drops rows the portal keeps, with nulls)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject
from catalog.services.sync import registry_sync
from jobs.models import JobRun, TrainingDataset
from tests import environment as env
from tests.conftest import wait_for_terminal
from tests.corpus.conftest import Corpus

END = env.DATA_END
# Times inside every view's data, between snapshots, and before any data (Feast's nulls or dropped rows).
TIMES = [END - timedelta(hours=h) for h in (1, 7, 26, 90)]
KEYS = {
    "corpus_local": {"driver_id": [1001, 1003, 9]},
    "corpus_postgres": {"driver_id": [1001, 1003, 9]},
    "shapes": {"user_id": [1, 2, 3, 99]},
}
REQUEST_DATA = {
    "corpus_local": {"val_to_add": 1, "val_to_add_2": 10},
    "corpus_postgres": {"val_to_add": 1, "val_to_add_2": 10},
    "shapes": {},
}


def entity_rows(project: str, *, entity_less: bool) -> dict[str, list[Any]]:
    """Every key at every time (entity-less services: the times alone), with the request data."""
    keys = {} if entity_less else KEYS[project]
    ((key, ids),) = keys.items() if keys else (("", [None]),)
    rows = [{**({key: i} if key else {}), "event_timestamp": t} for i in ids for t in TIMES]
    columns: dict[str, list[Any]] = {c: [r[c] for r in rows] for c in rows[0]}
    columns.update({name: [value] * len(rows) for name, value in REQUEST_DATA[project].items()})
    return columns


def plain(value: Any) -> Any:
    """One cell as plain Python, whichever side it comes from (NaN and None are both missing)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    if isinstance(value, pd.Timestamp):
        return plain(value.to_pydatetime())
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # Feast's PostgreSQL store answers UTC times without their zone
    if isinstance(value, Decimal | UUID):
        return str(value)  # a dataset holds a Decimal's exact text and a UUID's text
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("project", sorted(KEYS))
def test_every_service_builds_a_dataset_with_feasts_values(
    project: str,
    corpus: Corpus,
    client: Client,
    proposer: Any,
    storage_dir: Path,
    celery_worker: Any,
) -> None:
    (run,) = registry_sync(trigger="test")
    assert run.status == "succeeded", run.error
    store = feast_gateway.feature_store(corpus[project])
    client.force_login(proposer)
    services = CatalogObject.objects.filter(project__name=project, kind="feature_service").order_by("name")
    assert services
    for service in services:
        entity_less = not any(v.view.entity_names for v in service.vector.select_related("view"))
        columns = entity_rows(project, entity_less=entity_less)
        response = client.post(
            "/api/v1/jobs/",
            {
                "kind": "training_dataset",
                "project": project,
                "feature_service": service.name,
                "entities": {
                    k: [v.isoformat() if isinstance(v, datetime) else v for v in vs] for k, vs in columns.items()
                },
                "name": f"corpus-{service.name}",
            },
            content_type="application/json",
        )
        assert response.status_code == 202, (service.name, response.content)
        job = wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))
        assert job.status == JobRun.Status.SUCCEEDED, (service.name, job.error)
        dataset = TrainingDataset.objects.get(job_run=job)
        built = pq.read_table(storage_dir / project / dataset.name / "data.parquet").to_pylist()
        assert len(built) == len(columns["event_timestamp"])  # every entity row, in order

        vector = list(service.vector.order_by("index"))
        feature_columns = [f"{v.view_alias or v.view_name}__{v.feature_name}" for v in vector]
        as_text = {c for c, v in zip(feature_columns, vector, strict=True) if v.dtype in ("Map", "Struct")}
        frame = pd.DataFrame(columns)
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        by_feast = (
            store.get_historical_features(
                entity_df=frame, features=store.get_feature_service(service.name), full_feature_names=True
            )
            .to_df()
            .to_dict("records")
        )
        keys = [c for c in columns if c not in REQUEST_DATA[project]]
        ours = {tuple(plain(row[k]) for k in keys): row for row in built}
        compared = 0
        for row in by_feast:
            mine = ours[tuple(plain(row[k]) for k in keys)]
            # Map and Struct values are JSON text in a dataset (their Arrow shape depends on the data)
            got = [
                json.loads(mine[c]) if c in as_text and mine[c] is not None else plain(mine[c]) for c in feature_columns
            ]
            assert got == [plain(row[c]) for c in feature_columns], (service.name, row)
            compared += 1
        assert compared, f"Feast returned no rows for {service.name}"


def _build(client: Client, project: str, service: str, name: str, **entity_source: Any) -> TrainingDataset:
    response = client.post(
        "/api/v1/jobs/",
        {"kind": "training_dataset", "project": project, "feature_service": service, "name": name, **entity_source},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    job = wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))
    assert job.status == JobRun.Status.SUCCEEDED, job.error
    return TrainingDataset.objects.get(job_run=job)


def test_entity_less_views_at_given_times_and_features_without_any_value(
    corpus: Corpus, client: Client, proposer: Any, storage_dir: Path, celery_worker: Any
) -> None:
    (run,) = registry_sync(trigger="test")
    assert run.status == "succeeded", run.error
    client.force_login(proposer)
    # "every entity at these times" for an entity-less view: its one (dummy) entity, at each time
    times = [END - timedelta(hours=1), END - timedelta(hours=26)]
    dataset = _build(
        client, "shapes", "platform_service", "platform-at", entity_timestamps=[t.isoformat() for t in times]
    )
    table = pq.read_table(storage_dir / "shapes" / "platform-at" / "data.parquet")
    assert table.column_names == ["event_timestamp", "platform_daily__active_users", "platform_daily__error_rate"]
    # the latest platform row at or before each time, within the view's 2-day TTL (make_data.py)
    assert sorted(
        zip(table["event_timestamp"].to_pylist(), table["platform_daily__active_users"].to_pylist(), strict=True)
    ) == [
        (times[1], 120),
        (times[0], 135),
    ]
    assert dataset.row_count == 2
    # no entity row has a value: typed, all-null columns (Feast's result has no type for them)
    dataset = _build(
        client,
        "shapes",
        "inferred_service",
        "nobody",
        entities={"user_id": [99, 98], "event_timestamp": [t.isoformat() for t in times]},
    )
    table = pq.read_table(storage_dir / "shapes" / "nobody" / "data.parquet")
    assert str(table.schema.field("user_inferred__country").type) == "string"
    assert str(table.schema.field("user_inferred__is_premium").type) == "bool"
    assert all(table[c].null_count == 2 for c in table.column_names if c.startswith("user_inferred__"))
