"""The corpus online: the portal's materialization and preview held to Feast's own CLI and reads.

For each repo with views: the portal materializes every online view through a real worker; `feast
materialize` materializes a copy of the repo over the same window; every service then reads the same
values from both online stores (Feast's get_online_features). The preview of every service answers
those values, as JSON, in the service's declared order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject, ObjectVersion
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from tests import environment as env
from tests.conftest import run_feast, wait_for_terminal
from tests.corpus.conftest import Corpus, cli_copy

START = env.DATA_END - timedelta(days=20)
END = env.DATA_END
# The entity rows each service is read with: every key in the data, one unknown key, and the request
# data the on-demand views need. An entity-less view reads the same value for every row (Feast needs a
# column to count rows by and skips the keys no view of the service has).
ENTITY_ROWS = {
    "corpus_local": [{"driver_id": d, "val_to_add": 1, "val_to_add_2": 10} for d in (1001, 1002, 1003, 1004, 1005, 9)],
    "corpus_postgres": [
        {"driver_id": d, "val_to_add": 1, "val_to_add_2": 10} for d in (1001, 1002, 1003, 1004, 1005, 9)
    ],
    "shapes": [{"user_id": u} for u in (1, 2, 3, 99)],
}


def feast_online(store: Any, service: str, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Feast's own online read of a service (`view__feature` -> values per row)."""
    response = store.get_online_features(
        features=store.get_feature_service(service), entity_rows=rows, full_feature_names=True
    )
    return dict(response.to_dict())


def as_json(value: Any) -> Any:
    """What a Feast value is as JSON, independently of the portal: objects, arrays, numbers, strings."""
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Decimal | UUID):
        return str(value)  # exact text: a JSON number would round a Decimal
    return value


def services(project: str) -> list[CatalogObject]:
    return list(CatalogObject.objects.filter(project__name=project, kind="feature_service").order_by("name"))


@dataclass(frozen=True)
class Materialized:
    portal: feast_gateway.RepoRef  # materialized by the portal (a worker), Redis online store
    cli: feast_gateway.RepoRef  # a copy materialized by `feast materialize`, SQLite online store


@pytest.fixture
def materialized(
    project: str, corpus: Corpus, tmp_path: Path, client: Client, operator: Any, celery_worker: Any
) -> Materialized:
    """The project's online views materialized by the portal through a worker, and a copy by the CLI."""
    (run,) = registry_sync(trigger="test")
    assert run.status == "succeeded", run.error
    client.force_login(operator)
    response = client.post(
        "/api/v1/jobs/",
        {
            "kind": "materialize",
            "project": project,
            "mode": "range",
            "start": START.isoformat(),
            "end": END.isoformat(),
        },
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    job = wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))
    assert job.status == JobRun.Status.SUCCEEDED, (project, job.error, job.result)
    cli = cli_copy(corpus[project], tmp_path / project)
    run_feast(cli, "materialize", START.isoformat(), END.isoformat())
    return Materialized(portal=corpus[project], cli=cli)


@pytest.mark.parametrize("project", sorted(ENTITY_ROWS))
def test_portal_materialization_serves_what_feast_materialize_serves(project: str, materialized: Materialized) -> None:
    portal = feast_gateway.feature_store(materialized.portal)
    cli = feast_gateway.feature_store(materialized.cli)
    for service in services(project):
        rows = ENTITY_ROWS[project]
        by_portal, by_cli = feast_online(portal, service.name, rows), feast_online(cli, service.name, rows)
        assert by_portal == by_cli, service.name
        # and something was served: every view of the service has a value for a known key
        for column, values in by_portal.items():
            if "__" in column:
                assert values[0] is not None, (service.name, column)
    # The portal's own write (materialization intervals in the views' meta) is not a definition change: the
    # catalog records no version, in-band or out-of-band (it used to see `data_source_class_type removed`).
    (run,) = registry_sync(trigger="test")
    assert (run.status, run.changed, run.out_of_band) == ("succeeded", 0, 0), run.error
    assert not ObjectVersion.objects.filter(version__gt=1).exists()


@pytest.mark.parametrize("project", sorted(ENTITY_ROWS))
def test_preview_answers_feasts_values_as_json_in_declared_order(
    project: str, materialized: Materialized, client: Client
) -> None:
    store = feast_gateway.feature_store(materialized.portal)
    for service in services(project):
        # only entity-less views: the preview needs no key and reads one row
        entity_less = not any(v.view.entity_names for v in service.vector.select_related("view"))
        rows = ENTITY_ROWS[project][:1] if entity_less else ENTITY_ROWS[project]
        expected = feast_online(store, service.name, rows)
        entities = {} if entity_less else {key: [row[key] for row in rows] for key in rows[0]}
        response = client.post(
            f"/api/v1/projects/{project}/online-preview/",
            {"feature_service": service.name, "entities": entities},
            content_type="application/json",
        )
        assert response.status_code == 200, (service.name, response.content)
        body = response.json()
        declared = [v.reference for v in service.vector.order_by("index")]
        assert [v["feature"] for v in body["vector"]] == declared
        assert len(body["results"]) == len(rows)
        for i, result in enumerate(body["results"]):
            assert [v["feature"] for v in result["values"]] == declared
            values = [v["value"] for v in result["values"]]
            want = [as_json(expected[ref.replace(":", "__")][i]) for ref in declared]
            assert values == want, (service.name, i)
            # no Python repr of a value reaches the answer (dicts, bytes, numpy arrays)
            assert not any(isinstance(v, str) and v.startswith(("{'", "b'", "[", "array(")) for v in values), values


def _job(client: Client, body: dict[str, Any]) -> JobRun:
    response = client.post("/api/v1/jobs/", body, content_type="application/json")
    assert response.status_code == 202, response.content
    return wait_for_terminal(JobRun.objects.get(pk=response.json()["id"]))


# view -> the entity keys its data has (shapes: make_data.py; postgres: the template's five drivers)
SKEW_VIEWS = {
    ("shapes", "user_profile"): 3,
    ("shapes", "platform_daily"): 1,
    ("shapes", "user_inferred"): 3,
    ("shapes", "user_media"): 3,
    ("shapes", "user_clicks"): 2,
    ("corpus_local", "driver_hourly_stats"): 5,
    ("corpus_local", "driver_hourly_stats_fresh"): 5,
    ("corpus_postgres", "driver_hourly_stats"): 5,
    ("corpus_postgres", "driver_hourly_stats_fresh"): 5,
}


@pytest.mark.parametrize(("project", "view"), sorted(SKEW_VIEWS))
def test_skew_and_statistics_of_every_value_type(
    project: str, view: str, materialized: Materialized, client: Client
) -> None:
    """Online (the portal's materialization) against offline (Feast's historical retrieval) for every
    value type: no skew; and statistics of every field."""
    skew = _job(client, {"kind": "skew", "project": project, "view": view, "sample": 100, "as_of": END.isoformat()})
    assert skew.status == JobRun.Status.SUCCEEDED, skew.error
    assert skew.result["sampled"] == SKEW_VIEWS[(project, view)], skew.result
    views = feast_gateway.read_registry(materialized.portal).feature_views
    (fv,) = [v for v in views if (v.project, v.name) == (project, view)]
    keys = {c.name for c in fv.entity_columns}  # a stream view's entity columns are among its fields
    assert [f["feature"] for f in skew.result["features"]] == [
        f"{view}:{f.name}" for f in fv.features if f.name not in keys
    ]
    for feature in skew.result["features"]:
        assert feature["compared"] == skew.result["sampled"] and feature["mismatches"] == 0, feature["examples"]
    stats = _job(
        client, {"kind": "stats", "project": project, "view": view, "start": START.isoformat(), "end": END.isoformat()}
    )
    assert stats.status == JobRun.Status.SUCCEEDED, stats.error
