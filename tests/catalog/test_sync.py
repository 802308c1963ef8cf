"""The registry sync: a faithful, incremental mirror of real Feast registries."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from catalog import feast_gateway
from catalog.models import (
    AuditEvent,
    CatalogObject,
    ExpectedChange,
    Feature,
    LineageEdge,
    ObjectVersion,
    Project,
    ServiceFeature,
    SyncRun,
    SyncState,
)
from catalog.services.sync import registry_sync
from tests import environment as env
from tests.conftest import run_feast
from tests.registry_dump import assert_mirrors_registry_dump, obj

pytestmark = pytest.mark.django_db


def sync_one(**kwargs: Any) -> SyncRun:
    runs = registry_sync(**kwargs)
    assert len(runs) == 1
    return runs[0]


def test_sync_mirrors_both_projects_of_one_registry_field_by_field(
    demo_repo: feast_gateway.RepoRef, rich_repo: feast_gateway.RepoRef, settings: Any
) -> None:
    settings.FEAST_REPO_PATHS = [demo_repo.path, rich_repo.path]
    registries = feast_gateway.governed_registries()
    assert len(registries) == 1 and len(registries[0].repos) == 2  # two YAMLs, one SQL registry
    run = sync_one(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert set(Project.objects.values_list("name", flat=True)) == {"employee_attrition", "ride_sharing"}
    assert Project.objects.get(name="ride_sharing").repo_key == str(rich_repo.yaml_path)
    assert assert_mirrors_registry_dump(feast_gateway.registry_dump_json(demo_repo), "employee_attrition") == 15
    assert assert_mirrors_registry_dump(feast_gateway.registry_dump_json(rich_repo), "ride_sharing") >= 17
    # The aliased, sub-selected service: positions 0..n-1 across its projections.
    v2 = obj("ride_sharing", "feature_service", "driver_ranking_v2")
    assert [v.reference for v in v2.vector.order_by("index")] == [
        "rider_profile:rating",
        "dhs:avg_daily_trips",
        "dhs:conv_rate",
        "trip_pricing:expected_fare",
        "trip_pricing:driver_quality",
    ]
    assert v2.vector.get(index=1).view == obj("ride_sharing", "feature_view", "driver_hourly_stats")
    # Owners and teams: the `team` tag wins; objects without one fall back to their owner string.
    assert obj("ride_sharing", "entity", "rider").team.name == "growth"
    assert obj("ride_sharing", "data_source", "driver_events").subkind == "kafka"
    assert obj("ride_sharing", "feature_view", "driver_event_counts").subkind == "stream"
    assert obj("employee_attrition", "feature_view", "employee_features").feast_state == "AVAILABLE_ONLINE"
    assert obj("employee_attrition", "feature_view", "employee_features").materialization_intervals


def test_lineage_edges_follow_the_definitions(rich_repo: feast_gateway.RepoRef, settings: Any) -> None:
    settings.FEAST_REPO_PATHS = [rich_repo.path]
    assert sync_one().status == SyncRun.Status.SUCCEEDED
    edges = {
        (e.upstream.name, e.downstream.name, e.kind)
        for e in LineageEdge.objects.filter(project__name="ride_sharing").select_related("upstream", "downstream")
    }
    assert ("driver_stats", "driver_hourly_stats", "source_view") in edges
    assert ("driver", "driver_hourly_stats", "entity_view") in edges
    assert ("city", "driver_city_stats", "entity_view") in edges
    assert ("driver_stats_push", "driver_realtime", "source_view") in edges
    assert ("driver_stats", "driver_stats_push", "source_source") in edges
    assert ("driver_events", "driver_event_counts", "source_view") in edges
    assert ("driver_hourly_stats", "trip_pricing", "view_view") in edges
    assert ("trip_request", "trip_pricing", "request_view") in edges
    assert ("driver_hourly_stats", "driver_ranking_v2", "view_service") in edges
    assert ("trip_pricing", "pricing", "view_service") in edges


def test_first_sync_is_a_baseline_and_an_unchanged_registry_is_a_noop(demo_repo: feast_gateway.RepoRef) -> None:
    first = sync_one()
    assert (first.status, first.added, first.out_of_band) == (SyncRun.Status.SUCCEEDED, 15, 0)  # 13 + the 2 permissions
    assert not AuditEvent.objects.filter(action="catalog.out_of_band_change_detected").exists()
    assert ObjectVersion.objects.filter(change="added").count() == 15
    second = sync_one()
    assert second.status == SyncRun.Status.NOOP
    assert (second.added, second.changed, second.removed) == (0, 0, 0)
    assert ObjectVersion.objects.count() == 15
    forced = sync_one(force=True)
    assert (forced.status, forced.unchanged, forced.changed) == (SyncRun.Status.SUCCEEDED, 15, 0)


def test_a_new_canonical_form_is_not_a_registry_change(demo_repo: feast_gateway.RepoRef) -> None:
    """After an upgrade that ignores one more serialization-only field, the stored hashes differ from the
    registry's: the sync re-hashes the stored spec, records no version and stores the new hash. A stored
    spec that really differs is still a change."""
    sync_one()
    source = CatalogObject.objects.get(kind="data_source", name="employee_attrition")
    view = CatalogObject.objects.get(kind="feature_view", name="employee_features")
    hashes = {source.pk: source.content_hash, view.pk: view.content_hash}
    # as an older portal stored them: the Python class name in, and a hash over it
    source.spec = {**source.spec, "data_source_class_type": "feast.infra.offline_stores.file_source.FileSource"}
    view.spec = {**view.spec, "description": "what the registry no longer says"}
    for o in (source, view):
        o.content_hash = "0" * 64
        o.save(update_fields=["spec", "content_hash"])
    run = sync_one(force=True)
    assert (run.status, run.changed, run.out_of_band) == (SyncRun.Status.SUCCEEDED, 1, 1)
    source.refresh_from_db()
    view.refresh_from_db()
    assert (source.content_hash, source.version) == (hashes[source.pk], 1)
    assert "data_source_class_type" not in source.spec
    assert (view.content_hash, view.version) == (hashes[view.pk], 2)
    assert ObjectVersion.objects.filter(object=source).count() == 1


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_a_changed_definition_is_recorded_exactly_and_flagged_out_of_band(
    editable_demo_repo: feast_gateway.RepoRef,
) -> None:
    assert sync_one().status == SyncRun.Status.SUCCEEDED
    features = editable_demo_repo.path / "features.py"
    _edit(
        features,
        'description="Core attrition signals per employee, refreshed monthly by HR."',
        'description="Core attrition signals per employee."',
    )
    _edit(features, "ttl=timedelta(days=45)", "ttl=timedelta(days=30)")
    run_feast(editable_demo_repo, "apply")

    run = sync_one()
    assert (run.status, run.added, run.changed, run.removed) == (SyncRun.Status.SUCCEEDED, 0, 2, 0)
    assert run.out_of_band == 2
    view = obj("employee_attrition", "feature_view", "employee_features")
    latest = view.versions.get(version=2)
    assert latest.changes == [
        {
            "path": "description",
            "change": "changed",
            "before": "Core attrition signals per employee, refreshed monthly by HR.",
            "after": "Core attrition signals per employee.",
        }
    ]
    assert latest.out_of_band and latest.change == ObjectVersion.Change.CHANGED
    dept = obj("employee_attrition", "feature_view", "department_features")
    assert dept.ttl_seconds == 30 * 86400
    assert dept.versions.get(version=2).changes == [
        {"path": "ttl", "change": "changed", "before": "3888000s", "after": "2592000s"}
    ]
    # Nothing else moved.
    assert CatalogObject.objects.filter(version=1).count() == 13  # the 15 objects but the 2 edited
    events = AuditEvent.objects.filter(action="catalog.out_of_band_change_detected")
    assert sorted(events.values_list("object_repr", flat=True)) == [
        "employee_attrition/department_features",
        "employee_attrition/employee_features",
    ]
    assert AuditEvent.objects.get(action="registry.synced", object_id=str(run.pk)).after["changed"] == 2


def test_a_removed_field_is_kept_as_removed_and_services_follow(editable_demo_repo: feast_gateway.RepoRef) -> None:
    sync_one()
    features = editable_demo_repo.path / "features.py"
    _edit(
        features,
        '        Field(name="career_velocity", dtype=Float32, description="Promotions per year of tenure."),\n',
        "",
    )
    run_feast(editable_demo_repo, "apply")
    run = sync_one()
    # The view, attrition_model_v1 (its vector lost a position) and the on-demand view reading it.
    assert run.changed == 3
    odfv = obj("employee_attrition", "feature_view", "employee_risk_signals").versions.get(version=2)
    assert [(c["path"], c["change"]) for c in odfv.changes] == [
        ("sources.employee_features.feature_view_projection.feature_columns[career_velocity]", "removed")
    ]
    view = obj("employee_attrition", "feature_view", "employee_features")
    change = view.versions.get(version=2).changes
    assert [c["path"] for c in change] == ["features[career_velocity]"]
    assert change[0]["change"] == "removed"
    assert Feature.objects.get(view=view, name="career_velocity").status == "removed"
    assert [f.name for f in view.features.filter(status="active")] == [
        "tenure",
        "salary_band",
        "overtime",
        "promotion_stagnation",
        "overall_satisfaction",
    ]
    v1 = obj("employee_attrition", "feature_service", "attrition_model_v1")
    assert list(v1.vector.order_by("index").values_list("index", "feature_name")) == [
        (0, "tenure"),
        (1, "salary_band"),
        (2, "overtime"),
        (3, "promotion_stagnation"),
        (4, "overall_satisfaction"),
    ]


def test_a_deleted_object_is_kept_as_removed_with_its_history_and_can_come_back(
    editable_demo_repo: feast_gateway.RepoRef,
) -> None:
    sync_one()
    features = editable_demo_repo.path / "features.py"
    original = features.read_text()
    start = original.index("attrition_model_v2 = FeatureService(")
    features.write_text(original[:start])
    run_feast(editable_demo_repo, "apply")  # feast apply deletes what the repo no longer defines
    run = sync_one()
    assert run.removed == 1
    v2 = obj("employee_attrition", "feature_service", "attrition_model_v2")
    assert v2.status == "removed" and v2.removed_at is not None
    assert list(v2.versions.values_list("version", "change")) == [(2, "removed"), (1, "added")]
    assert ServiceFeature.objects.filter(service=v2).count() == 7  # its last vector is still browsable

    features.write_text(original)
    run_feast(editable_demo_repo, "apply")
    run = sync_one()
    v2.refresh_from_db()
    assert (v2.status, v2.version) == ("active", 3)
    assert v2.versions.get(version=3).change == "restored"


def test_materialization_moves_timestamps_but_is_not_a_change(demo_repo: feast_gateway.RepoRef) -> None:
    sync_one()
    before = obj("employee_attrition", "feature_view", "employee_features").last_materialized_end
    later = env.DATA_END + timedelta(hours=12)
    run_feast(demo_repo, "materialize", env.DATA_END.isoformat(), later.isoformat(), "-v", "employee_features")
    run = sync_one()
    assert run.status == SyncRun.Status.SUCCEEDED  # the fingerprint moved ...
    assert (run.changed, run.out_of_band) == (0, 0)  # ... but no content did
    after = obj("employee_attrition", "feature_view", "employee_features")
    assert after.last_materialized_end > before
    assert after.version == 1


def test_changes_the_portal_applied_itself_are_not_out_of_band(editable_demo_repo: feast_gateway.RepoRef) -> None:
    sync_one()
    _edit(editable_demo_repo.path / "features.py", "ttl=timedelta(days=45)", "ttl=timedelta(days=31)")
    run_feast(editable_demo_repo, "apply")
    new_hash = next(
        v.content_hash
        for v in feast_gateway.read_registry(editable_demo_repo).feature_views
        if v.name == "department_features"
    )
    ExpectedChange.objects.create(
        project_name="employee_attrition",
        kind="feature_view",
        name="department_features",
        content_hash=new_hash,
        source="change-request:1",
    )
    run = sync_one()
    assert (run.changed, run.out_of_band) == (1, 0)
    assert not obj("employee_attrition", "feature_view", "department_features").versions.get(version=2).out_of_band
    assert ExpectedChange.objects.get().consumed_at is not None


def test_a_sync_holding_the_lease_makes_another_skip(demo_repo: feast_gateway.RepoRef) -> None:
    source = feast_gateway.governed_registries()[0]
    SyncState.objects.create(
        registry_key=source.key, locked_until=timezone.now() + timedelta(minutes=5), lock_token="x"
    )
    run = sync_one()
    assert run.status == SyncRun.Status.SKIPPED
    assert not CatalogObject.objects.exists()
    SyncState.objects.update(locked_until=timezone.now() - timedelta(seconds=1))  # an expired lease is taken over
    assert sync_one().status == SyncRun.Status.SUCCEEDED
    assert SyncState.objects.get().locked_until is None  # released


def test_sync_of_one_project_leaves_the_others_alone(
    demo_repo: feast_gateway.RepoRef, rich_repo: feast_gateway.RepoRef, settings: Any
) -> None:
    settings.FEAST_REPO_PATHS = [demo_repo.path, rich_repo.path]
    run = sync_one(project="ride_sharing")
    assert run.status == SyncRun.Status.SUCCEEDED
    assert list(Project.objects.values_list("name", flat=True)) == ["ride_sharing"]
    unknown = sync_one(project="no_such_project")
    assert unknown.status == SyncRun.Status.FAILED
    assert "'no_such_project' is not in the registry" in unknown.error


def test_an_unreachable_registry_fails_clearly_and_changes_nothing(
    demo_repo: feast_gateway.RepoRef, settings: Any
) -> None:
    sync_one()
    objects_before = CatalogObject.objects.count()
    settings.FEAST_CONFIG_VARS = {
        **settings.FEAST_CONFIG_VARS,
        "FEAST_REGISTRY_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
    }
    feast_gateway.dispose_engines()
    run = sync_one()
    assert run.status == SyncRun.Status.FAILED
    assert "unreachable" in run.error and "127.0.0.1:1" in run.error
    assert CatalogObject.objects.count() == objects_before
    assert not CatalogObject.objects.filter(status="removed").exists()  # a failed read is not "everything was deleted"


def test_a_corrupt_registry_file_fails_clearly(tmp_path: Path, settings: Any) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: broken\nprovider: local\nregistry: data/registry.db\n")
    (repo / "data" / "registry.db").write_bytes(b"\x08\x96\x01 this is not a registry \xff\xff\xff")
    settings.FEAST_REPO_PATHS = [repo]
    settings.FEAST_FS_YAML = "feature_store.yaml"
    run = sync_one()
    assert run.status == SyncRun.Status.FAILED
    assert "corrupt" in run.error
    assert not Project.objects.exists()


def test_an_unreadable_object_is_marked_kept_and_breaks_nothing_else(
    demo_repo: feast_gateway.RepoRef, client: Any, viewer: Any
) -> None:
    """One undecodable proto in a SQL registry: the sync succeeds; that object keeps what the catalog last read
    (never "removed"), marked with the decoder's message; an object never read gets a placeholder; every page
    and list answers 200; once the proto reads again the mark goes."""
    sync_one()
    versions = ObjectVersion.objects.count()
    query = "SELECT feature_view_proto FROM feature_views WHERE feature_view_name = 'employee_features'"
    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}", autocommit=True) as conn:
        (original,) = conn.execute(query).fetchone() or (None,)
        assert original is not None
        conn.execute(
            "UPDATE feature_views SET feature_view_proto = %s WHERE feature_view_name = 'employee_features'",
            (b"\xff\xff\xff garbage",),
        )
        conn.execute(
            "INSERT INTO feature_services (feature_service_name, project_id, last_updated_timestamp, "
            "feature_service_proto) VALUES ('ghost_service', 'employee_attrition', 0, %s)",
            (b"\xff\xfe",),
        )
    run = sync_one()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.added, run.changed, run.removed) == (0, 0, 0)
    assert sorted(s.split(":")[0] for s in run.skipped_objects) == [
        "feature service employee_attrition/ghost_service",
        "feature view employee_attrition/employee_features",
    ]
    view = obj("employee_attrition", "feature_view", "employee_features")
    assert view.status == "active" and view.read_error.startswith("its proto does not decode (Error parsing message")
    assert view.spec and view.features.count() > 0  # what it last read
    ghost = obj("employee_attrition", "feature_service", "ghost_service")
    assert ghost.read_error and ghost.spec == {} and ghost.status == "active"
    assert ObjectVersion.objects.count() == versions  # nothing removed, nothing changed

    client.force_login(viewer)
    base = "/projects/employee_attrition"
    for url in [
        f"{base}/",
        f"{base}/feature-views/employee_features/",
        f"{base}/feature-services/ghost_service/",
        f"{base}/feature-services/attrition_model_v1/",
        "/search/?q=ghost",
        f"{base}/lineage/",
        "/api/v1/objects/",
        "/api/v1/feature-services/",
        "/api/v1/projects/employee_attrition/lineage/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    page = client.get(f"{base}/feature-services/ghost_service/").content.decode()
    assert 'id="read-error"' in page and "has never read it" in page
    page = client.get(f"{base}/feature-views/employee_features/").content.decode()
    assert "the definition the portal last read" in page and "Propose a change" not in page
    api = client.get("/api/v1/objects/?q=ghost_service").json()
    assert [o["read_error"] != "" for o in api["results"] if o["name"] == "ghost_service"] == [True]

    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}", autocommit=True) as conn:
        conn.execute(
            "UPDATE feature_views SET feature_view_proto = %s WHERE feature_view_name = 'employee_features'",
            (original,),
        )
    run = sync_one()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    view.refresh_from_db()
    assert view.read_error == "" and view.version == 1  # readable again, and unchanged: no new version


def test_nul_characters_in_feast_strings_skip_only_their_object(
    demo_repo: feast_gateway.RepoRef, client: Any, viewer: Any
) -> None:
    """PostgreSQL text and JSON cannot hold NUL: an object whose text does is skipped with a clear mark (what
    the catalog last read stays), a project's text is shown escaped, and the rest of the registry syncs."""
    from feast.protos.feast.core.Entity_pb2 import Entity as EntityProto
    from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FeatureViewProto
    from feast.protos.feast.core.Project_pb2 import Project as ProjectProto

    sync_one()
    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}", autocommit=True) as conn:
        for table, column, key, name, proto_type, edit in [
            ("entities", "entity_proto", "entity_name", "employee_id", EntityProto, "description"),
            ("feature_views", "feature_view_proto", "feature_view_name", "employee_features", FeatureViewProto, "tag"),
            ("projects", "project_proto", "project_name", "employee_attrition", ProjectProto, "description"),
        ]:
            (raw,) = conn.execute(f"SELECT {column} FROM {table} WHERE {key} = %s", (name,)).fetchone() or (None,)
            message = proto_type()
            message.ParseFromString(raw)
            if edit == "tag":
                message.spec.tags["note"] = "before\x00after"
            else:
                message.spec.description = "line one\x00line two"
            conn.execute(f"UPDATE {table} SET {column} = %s WHERE {key} = %s", (message.SerializeToString(), name))
    run = sync_one(force=True)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert sorted(s.split(":")[0] for s in run.skipped_objects) == [
        "entity employee_attrition/employee_id",
        "feature view employee_attrition/employee_features",
    ]
    entity = obj("employee_attrition", "entity", "employee_id")
    assert "description hold a NUL character" in entity.read_error and entity.status == "active"
    view = obj("employee_attrition", "feature_view", "employee_features")
    assert "tags[note] hold a NUL character" in view.read_error and view.features.count() > 0  # last read kept
    project = Project.objects.get(name="employee_attrition")
    assert project.description == "line one\\x00line two"
    assert obj("employee_attrition", "feature_view", "department_features").read_error == ""  # the rest synced
    client.force_login(viewer)
    for url in ["/projects/employee_attrition/", "/projects/employee_attrition/entities/employee_id/"]:
        assert client.get(url).status_code == 200, url


def test_a_failure_while_writing_rolls_back_the_whole_sync(demo_repo: feast_gateway.RepoRef) -> None:
    """A database error in the last step of the apply leaves the catalog exactly as it was (empty)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fail_versions() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END; $$ LANGUAGE plpgsql;"
            "CREATE TRIGGER fail_versions BEFORE INSERT ON catalog_objectversion FOR EACH ROW EXECUTE FUNCTION fail_versions();"
        )
    with pytest.raises(Exception, match="disk full"):
        registry_sync()
    assert not Project.objects.exists()
    assert not CatalogObject.objects.exists()
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED and "disk full" in run.error
    assert SyncState.objects.get().locked_until is None


def test_reading_never_creates_a_phantom_project(registry: str, tmp_path: Path, settings: Any) -> None:
    """Feast's SqlRegistry constructor inserts metadata for its project; the portal reads without it."""
    repo = tmp_path / "ghost"
    repo.mkdir()
    (repo / "feature_store.services.yaml").write_text(
        "project: ghost\nprovider: local\nregistry:\n  registry_type: sql\n  path: ${FEAST_REGISTRY_URL}\n"
    )
    settings.FEAST_REPO_PATHS = [repo]
    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}") as conn:
        before = conn.execute("SELECT count(*) FROM feast_metadata").fetchone()
    run = sync_one()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert "ghost" not in set(Project.objects.values_list("name", flat=True))
    assert Project.objects.get(name="employee_attrition").repo_key == ""  # held, but no governed YAML names it
    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}") as conn:
        assert conn.execute("SELECT count(*) FROM feast_metadata").fetchone() == before
        assert conn.execute("SELECT count(*) FROM projects WHERE project_id = 'ghost'").fetchone() == (0,)


def test_sync_registry_command_reports_counts(demo_repo: feast_gateway.RepoRef, capsys: Any) -> None:
    from django.core.management import call_command

    call_command("sync_registry")
    out = capsys.readouterr().out
    assert re.search(r"succeeded in \d+ ms — added 15, changed 0, removed 0", out), out


VECTOR_VIEW = """
from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Array, Float32

from features import employee, employee_source

employee_embeddings = FeatureView(
    name="employee_embeddings",
    entities=[employee],
    ttl=timedelta(days=30),
    online=False,  # the SQLite online store needs sqlite-vec for vector tables; the catalog needs none
    schema=[
        Field(name="profile_embedding", dtype=Array(Float32), vector_index=True, vector_length=4,
              vector_search_metric="COSINE"),
        Field(name="tenure", dtype=Float32),
    ],
    source=employee_source,
)
"""


def test_vector_search_fields_are_read_and_older_rows_are_rederived_without_a_version(
    editable_demo_repo: feast_gateway.RepoRef, client: Any, viewer: Any
) -> None:
    """Feast's vector-search settings of a field reach the catalog, its page and the API. Rows a sync derived
    before it read them (an older portal) are rebuilt once by the next sync, with no new version."""
    (editable_demo_repo.path / "vectors.py").write_text(VECTOR_VIEW)
    run_feast(editable_demo_repo, "apply")
    assert sync_one().status == SyncRun.Status.SUCCEEDED
    view = obj("employee_attrition", "feature_view", "employee_embeddings")
    vector = {"index": True, "length": 4, "search_metric": "COSINE"}
    assert dict(view.features.values_list("name", "vector_search")) == {"profile_embedding": vector, "tenure": {}}

    client.force_login(viewer)
    page = client.get(view.get_absolute_url()).content.decode()
    assert "vector index · 4 dims · COSINE" in page
    api = client.get(view.get_api_url()).json()
    assert [f["vector_search"] for f in api["features"]] == [vector, {}]

    # As an older portal left it: rows derived without the settings.
    Feature.objects.filter(view=view).update(vector_search={})
    CatalogObject.objects.update(derived_version=0)
    versions = ObjectVersion.objects.count()
    run = sync_one(force=True)
    assert (run.status, run.changed, run.out_of_band) == (SyncRun.Status.SUCCEEDED, 0, 0), run.error
    assert ObjectVersion.objects.count() == versions
    assert view.features.get(name="profile_embedding").vector_search == vector
    assert not CatalogObject.objects.filter(derived_version=0).exists()
