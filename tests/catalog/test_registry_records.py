"""Saved datasets, validation references and permissions: read from the registry, each with its page, API
endpoint, search entry, lineage and history (issue 15). Written by Feast itself: the permission by `feast apply`,
the saved dataset by Feast's `create_saved_dataset`; the validation reference row as Feast's SqlRegistry writes
it (Feast's own API needs great_expectations to build one, and the portal never unpickles its profiler)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject, LineageEdge, ObjectVersion, SyncRun
from catalog.services.sync import registry_sync
from tests import environment as env
from tests.conftest import run_feast
from tests.registry_dump import assert_mirrors_registry_dump

PROJECT = "employee_attrition"

PERMISSIONS = """
from feast import FeatureView
from feast.permissions.action import AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy

readers_see_views = Permission(
    name="readers_see_views",
    types=[FeatureView],
    name_patterns=["employee_.*"],
    policy=RoleBasedPolicy(roles=["reader"]),
    actions=[AuthzedAction.DESCRIBE, AuthzedAction.READ_ONLINE],
    tags={"team": "hr-data-platform"},
)
"""


def _validation_reference_row(name: str, dataset: str) -> None:
    from feast.protos.feast.core.ValidationProfile_pb2 import ValidationReference

    proto = ValidationReference(name=name, reference_dataset_name=dataset, project=PROJECT, description="Expected.")
    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO validation_references (validation_reference_name, project_id, last_updated_timestamp, "
            "validation_reference_proto) VALUES (%s, %s, 0, %s)",
            (name, PROJECT, proto.SerializeToString()),
        )


def test_saved_datasets_validation_references_and_permissions_are_catalog_objects(
    editable_demo_repo: feast_gateway.RepoRef, tmp_path: Path, client: Client, viewer: Any
) -> None:
    (editable_demo_repo.path / "readers_permissions.py").write_text(PERMISSIONS)  # beside the demo's own policy
    run_feast(editable_demo_repo, "apply")
    store = feast_gateway.feature_store(editable_demo_repo)
    from feast.infra.offline_stores.file_source import SavedDatasetFileStorage

    rows = pd.read_parquet(editable_demo_repo.path / "data" / "employee_attrition.parquet")
    entity_df = rows[["employee_id", "event_timestamp"]].head(20)
    store.create_saved_dataset(
        from_=store.get_historical_features(entity_df=entity_df, features=["employee_features:tenure"]),
        name="tenure_snapshot",
        storage=SavedDatasetFileStorage(path=str(tmp_path / "tenure_snapshot.parquet")),
        tags={"purpose": "test"},
    )
    _validation_reference_row("tenure_reference", "tenure_snapshot")

    (run,) = registry_sync(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.skipped_objects == []
    # Field by field as `feast registry-dump` prints the registry (it has no validation references: below).
    assert assert_mirrors_registry_dump(feast_gateway.registry_dump_json(editable_demo_repo), PROJECT) > 10
    by_kind = {
        kind: CatalogObject.objects.get(project__name=PROJECT, kind=kind, name=name)
        for kind, name in [
            ("permission", "readers_see_views"),
            ("saved_dataset", "tenure_snapshot"),
            ("validation_reference", "tenure_reference"),
        ]
    }
    permission, dataset, reference = by_kind.values()
    assert permission.subkind == "role_based" and permission.spec["actions"] == ["DESCRIBE", "READ_ONLINE"]
    assert permission.team is not None and permission.team.name == "hr-data-platform"
    assert dataset.subkind == "file" and dataset.location == str(tmp_path / "tenure_snapshot.parquet")
    assert dataset.spec["features"] == ["employee_features:tenure"]
    edges = set(
        LineageEdge.objects.filter(downstream__in=[dataset, reference]).values_list(
            "upstream__name", "downstream__name", "kind"
        )
    )
    assert edges == {
        ("employee_features", "tenure_snapshot", "view_dataset"),
        ("tenure_snapshot", "tenure_reference", "dataset_reference"),
    }
    for obj in by_kind.values():  # a history, and never flagged out-of-band (they are not governed)
        (version,) = ObjectVersion.objects.filter(object=obj)
        assert (version.version, version.out_of_band) == (1, False)

    client.force_login(viewer)
    pages = {
        permission.get_absolute_url(): ["role_based", "DESCRIBE, READ_ONLINE", "employee_.*"],
        dataset.get_absolute_url(): ["employee_features:tenure", "tenure_snapshot.parquet"],
        reference.get_absolute_url(): [dataset.get_absolute_url()],
        f"/projects/{PROJECT}/": ["Saved datasets", "Permissions", "Validation references"],
    }
    for url, expected in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert all(e in text for e in expected), (url, [e for e in expected if e not in text])
    # The demo repo's own policy (feature_repo/permissions.py) is listed too.
    policy = ["everyone_describes_and_reads", "portal_apply_writes"]
    for slug, names in [
        ("permissions", ["readers_see_views", *policy]),
        ("saved-datasets", ["tenure_snapshot"]),
        ("validation-references", ["tenure_reference"]),
    ]:
        listed = client.get(f"/api/v1/{slug}/").json()["results"]
        assert sorted(o["name"] for o in listed) == sorted(names), slug
        mine = next(o for o in listed if o["name"] == names[0])
        assert client.get(mine["url"]).json()["name"] == names[0]
    hits = client.get("/api/v1/search/", {"q": "tenure_snapshot"}).json()["results"]
    assert any(h["kind"] == "saved_dataset" and h["name"] == "tenure_snapshot" for h in hits), hits
