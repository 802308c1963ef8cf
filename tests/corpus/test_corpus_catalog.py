"""The corpus in the catalog: every object and field exactly as `feast registry-dump` has it."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject, Project, SyncRun
from catalog.services.change_requests import change_request_create
from catalog.services.sync import registry_sync
from tests.corpus.conftest import Corpus
from tests.governance.conftest import make_user
from tests.registry_dump import assert_mirrors_registry_dump, features_of, obj

pytestmark = pytest.mark.django_db


def test_every_corpus_repo_is_mirrored_field_by_field(corpus: Corpus) -> None:
    (run,) = registry_sync(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert set(Project.objects.values_list("name", flat=True)) == set(corpus.projects)
    counts = {p: assert_mirrors_registry_dump(feast_gateway.registry_dump_json(corpus[p]), p) for p in corpus.projects}
    # local: 1 entity, 5 sources, 5 views (2 on-demand, 1 label), 3 services; postgres: 1, 3, 4 (2 on-demand), 3;
    # shapes: 1, 6, 5, 6; minimal: nothing
    assert counts == {"corpus_local": 14, "corpus_minimal": 0, "corpus_postgres": 11, "shapes": 18}


def test_the_constructs_real_repos_use_read_as_feast_stores_them(corpus: Corpus) -> None:
    (run,) = registry_sync(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    # an entity-less view: no entity in the catalog (Feast's __dummy is its placeholder, not an object)
    platform = obj("shapes", "feature_view", "platform_daily")
    assert platform.entity_names == []
    assert not CatalogObject.objects.filter(name="__dummy").exists()
    # a view without a schema: the fields Feast inferred at apply, in the source's column order
    assert [(f[0], f[1]) for f in features_of(obj("shapes", "feature_view", "user_inferred"))] == [
        ("sessions", "Int64"),
        ("spend", "Float64"),
        ("country", "String"),
        ("is_premium", "Bool"),
    ]
    inferred = obj("shapes", "feature_service", "inferred_service")
    assert [v.reference for v in inferred.vector.order_by("index")] == [
        f"user_inferred:{f}" for f in ("sessions", "spend", "country", "is_premium")
    ]
    # every value type, by the name users write
    profile = obj("shapes", "feature_view", "user_profile")
    assert {f[0]: f[1] for f in features_of(profile)} == {
        "score": "Float64",
        "ratio": "Float32",
        "visits": "Int64",
        "level": "Int32",
        "active": "Bool",
        "nickname": "String",
        "avatar": "Bytes",
        "last_seen": "UnixTimestamp",
        "prefs": "Map",
        "settings": "Json",
        "address": "Struct",
        "labels": "Array(String)",
        "recent_scores": "Array(Float64)",
        "recent_visits": "Array(Int64)",
    }
    # ttl 0 is Feast's "no expiry", not "no TTL"
    assert profile.ttl_seconds == 0
    # the local template's label view is a view of its own kind, over its push source
    labels = obj("corpus_local", "feature_view", "driver_quality_labels")
    assert (labels.subkind, labels.batch_source_name) == ("label", "driver_quality_labels_push")
    # a custom source (Feast's CUSTOM_SOURCE) is named by its class and reads what its options say
    postgres = obj("corpus_postgres", "data_source", "driver_hourly_stats_source")
    assert (postgres.subkind, postgres.location) == ("postgres", "SELECT * FROM feast_driver_hourly_stats")


def test_a_custom_sources_columns_are_read_from_its_database(corpus: Corpus) -> None:
    from catalog.selectors import source_columns

    (run,) = registry_sync(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    project = Project.objects.get(name="corpus_postgres")
    columns = source_columns(source_name="driver_hourly_stats_source", project=project)
    assert columns["error"] == ""
    names = [name for name, _ in columns["columns"]]
    assert {"driver_id", "conv_rate", "acc_rate", "avg_daily_trips", "event_timestamp"} <= set(names)


def test_corpus_pages_render(corpus: Corpus, client: Client, admin_user: object) -> None:
    (run,) = registry_sync(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    client.force_login(admin_user)  # type: ignore[arg-type]
    for o in CatalogObject.objects.all():
        response = client.get(o.get_absolute_url())
        assert response.status_code == 200, (o.project.name, o.kind, o.name)
        if o.kind == "feature_view" and o.ttl_seconds == 0:
            assert b"no expiry" in response.content
        api = client.get(o.get_api_url())
        assert api.status_code == 200, (o.get_api_url(), api.status_code)
        assert api.json()["name"] == o.name
        found = client.get("/api/v1/objects/", {"q": o.name, "project": o.project.name, "page_size": 200})
        assert found.status_code == 200 and o.name in {r["name"] for r in found.json()["results"]}, o.name
        assert client.get("/search/", {"q": o.name}).status_code == 200
    for project in Project.objects.all():
        for url in (f"/projects/{project.name}/", f"/projects/{project.name}/lineage/"):
            assert client.get(url).status_code == 200, url
        assert client.get(f"/api/v1/projects/{project.name}/lineage/").status_code == 200
    for url in ("/api/v1/objects/", "/api/v1/data-sources/", "/api/v1/feature-views/", "/api/v1/feature-services/"):
        assert client.get(url, {"page_size": 200}).status_code == 200, url


def test_the_org_of_a_view_is_read(corpus: Corpus) -> None:
    views = {v.name: v for v in feast_gateway.read_registry(corpus["shapes"]).feature_views if v.project == "shapes"}
    assert (views["user_profile"].org, views["platform_daily"].org, views["user_inferred"].org) == (
        "growth",
        "platform",
        "",
    )


def test_the_org_of_a_view_is_its_owning_team_and_a_facet(corpus: Corpus, admin_user: object) -> None:
    from catalog.search import search

    (run,) = registry_sync(trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    platform = obj("shapes", "feature_view", "platform_daily")
    assert platform.team is not None and platform.team.name == "platform"
    results = search(user=admin_user, q="platform_daily")
    assert ("platform", 3) in results.facets.get("org", [])  # the view and its two features
    growth = search(user=admin_user, q="user", filters={"org": "growth"})
    assert growth.hits and {(h.project, h.parent or h.name) for h in growth.hits} == {("shapes", "user_profile")}
    # and approval routing follows the same rule: the org's team signs off a change to the view
    cr = change_request_create(
        actor=make_user("pia", "proposer"),
        project="shapes",
        title="document platform_daily",
        edits=[{"op": "set_metadata", "kind": "feature_view", "name": "platform_daily", "description": "Daily."}],
    )
    assert [t["name"] for t in cr.required_teams] == ["platform"]
