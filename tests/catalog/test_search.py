"""Catalog search on PostgreSQL: ranking, prefixes and typos, facets, highlighting, paging, type-ahead."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog import search as catalog_search
from catalog.models import CatalogObject, SearchEntry
from catalog.search.indexing import rebuild_index
from tests.catalog.test_sync import _edit, sync_one
from tests.conftest import run_feast

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef) -> None:
    assert sync_one().status == "succeeded"


def _names(results: catalog_search.SearchResults) -> list[str]:
    return [h.reference for h in results.hits]


def test_the_sync_indexes_every_object_and_feature(synced: None) -> None:
    objects = CatalogObject.objects.count()
    features = CatalogObject.objects.filter(kind="feature_view").values_list("feature_count", flat=True)
    assert SearchEntry.objects.count() == objects + sum(features)
    assert "dtype:Float32" in SearchEntry.objects.get(kind="feature", name="tenure").facet_values
    # A rebuild from scratch produces the same entries.
    before = sorted(SearchEntry.objects.values_list("kind", "project", "name", "parent", "status"))
    rebuild_index()
    assert sorted(SearchEntry.objects.values_list("kind", "project", "name", "parent", "status")) == before


def test_a_prefix_finds_the_feature_first(viewer: Any, synced: None) -> None:
    results = catalog_search.search(user=viewer, q="tenur")
    assert results.hits[0].reference == "employee_features:tenure"
    assert results.hits[0].kind == "feature"
    assert str(results.hits[0].name_html) == "<mark>tenur</mark>e"


@pytest.mark.parametrize(("typo", "expected"), [("satisfacton", "overall_satisfaction"), ("overtme", "overtime")])
def test_typos_are_tolerated(viewer: Any, synced: None, typo: str, expected: str) -> None:
    assert expected in [h.name for h in catalog_search.search(user=viewer, q=typo).hits]


def test_an_exact_name_outranks_mentions(viewer: Any, synced: None) -> None:
    results = catalog_search.search(user=viewer, q="employee_features")
    assert results.hits[0].reference == "employee_features"
    assert results.hits[0].kind == "feature_view"
    # Services and features that mention it rank below it but are still found.
    assert "attrition_model_v1" in _names(results)


def test_descriptions_owners_and_tags_are_searched(viewer: Any, synced: None) -> None:
    by_tag = catalog_search.search(user=viewer, q="realtime")
    assert "employee_activity" in _names(by_tag)
    by_team = catalog_search.search(user=viewer, q="people analytics", filters={"kind": "feature_service"})
    assert set(_names(by_team)) == {"attrition_model_v1", "attrition_model_v2"}


def test_facets_count_and_filter(viewer: Any, synced: None) -> None:
    everything = catalog_search.search(user=viewer, q="employee")
    kinds = dict(everything.facets["kind"])
    assert kinds["feature_view"] >= 2 and kinds["feature"] >= 6
    assert sum(kinds.values()) == everything.total
    ints = catalog_search.search(user=viewer, q="employee", filters={"kind": "feature", "dtype": "Int64"})
    assert 0 < ints.total <= dict(everything.facets["dtype"])["Int64"]
    assert {h.dtype for h in ints.hits} == {"Int64"}
    assert {h.kind for h in ints.hits} == {"feature"}
    assert dict(ints.facets["kind"]) == {"feature": ints.total}
    tagged = catalog_search.search(user=viewer, q="employee", filters={"tag": "tier=gold"})
    assert tagged.total > 0
    assert all(h.kind == "data_source" for h in tagged.hits)
    nothing = catalog_search.search(user=viewer, q="employee", filters={"project": "no_such_project"})
    assert nothing.total == 0 and nothing.hits == []


def test_pages_do_not_overlap(viewer: Any, synced: None) -> None:
    first = catalog_search.search(user=viewer, q="e", per_page=5)  # one letter: prefix over everything
    assert first.total > 10
    second = catalog_search.search(user=viewer, q="e", per_page=5, page=2)
    assert not {h.id for h in first.hits} & {h.id for h in second.hits}
    beyond = catalog_search.search(user=viewer, q="e", per_page=5, page=999)
    assert beyond.page == beyond.pages


def test_removed_features_are_found_but_marked_and_ranked_last(
    viewer: Any, editable_demo_repo: feast_gateway.RepoRef
) -> None:
    sync_one()
    _edit(editable_demo_repo.path / "features.py", 'Field(name="career_velocity"', 'Field(name="career_speed"')
    run_feast(editable_demo_repo, "apply")
    sync_one()
    hits = catalog_search.search(user=viewer, q="career", filters={"kind": "feature"}).hits
    statuses = {h.name: h.status for h in hits}
    assert statuses["career_speed"] == "active"
    assert statuses["career_velocity"] == "removed"
    assert [h.status for h in hits][-1] == "removed"


def test_people_without_a_role_find_nothing(outsider: Any, synced: None) -> None:
    assert catalog_search.search(user=outsider, q="tenure").total == 0
    assert catalog_search.suggest(user=outsider, q="tenure") == []


def test_hostile_queries_are_harmless(viewer: Any, synced: None) -> None:
    for q in [
        "",
        "   ",
        "'; DROP TABLE catalog_searchentry; --",
        "a & | ! :*",
        "%_%",
        "x" * 500,
        "(((",
        "tenure:*",
        "ten\x00ure",
        "\x00",
    ]:
        results = catalog_search.search(user=viewer, q=q, filters={"tag": q, "kind": q})
        assert results.total >= 0
        assert isinstance(catalog_search.suggest(user=viewer, q=q), list)
    assert SearchEntry.objects.exists()


def test_suggestions_prefer_names_that_start_with_the_text(viewer: Any, synced: None) -> None:
    hits = catalog_search.suggest(user=viewer, q="ten")
    assert hits[0].name == "tenure"
    assert all(h.status != "removed" for h in hits)


def test_suggestions_tolerate_typos_and_offer_owners(viewer: Any, synced: None) -> None:
    assert "overall_satisfaction" in [h.name for h in catalog_search.suggest(user=viewer, q="satisfacton")]
    owners = [h for h in catalog_search.suggest(user=viewer, q="people-analy") if h.kind == "owner"]
    assert owners and owners[0].url == "/owners/people-analytics/"


def test_the_search_page_renders_facets_highlights_and_a_bounded_number_of_queries(
    client: Client, viewer: Any, synced: None, django_assert_max_num_queries: Any
) -> None:
    client.force_login(viewer)
    with django_assert_max_num_queries(12):
        response = client.get("/search/", {"q": "tenur"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<mark>tenur</mark>e" in body
    assert 'data-facet="kind"' in body and 'data-facet="dtype"' in body
    assert "/projects/employee_attrition/feature-views/employee_features/features/tenure/" in body
    filtered = client.get("/search/", {"q": "employee", "kind": "feature_service"}).content.decode()
    assert "attrition_model_v1" in filtered and "selected" in filtered
    empty = client.get("/search/", {"q": "zzzzqqq"}).content.decode()
    assert "Nothing matches" in empty
    assert "Prefixes and small typos work" in client.get("/search/").content.decode()


def test_the_typeahead_partial(client: Client, viewer: Any, synced: None) -> None:
    client.force_login(viewer)
    body = client.get("/search/suggest/", {"q": "tenu"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<mark>tenu</mark>re" in body and "All results" in body
    assert client.get("/search/suggest/", {"q": "t"}).content.decode().strip() == ""


def test_a_large_import_is_indexed_right_after_its_transaction(
    viewer: Any, demo_repo: feast_gateway.RepoRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.services import sync

    monkeypatch.setattr(sync, "INLINE_INDEX_LIMIT", 3)  # the demo's 13 objects count as a large import
    run = sync.registry_sync(index=False)[0]
    assert run.status == "succeeded" and run.added == 13
    assert not SearchEntry.objects.exists()  # the catalog transaction committed without the index
    assert sync.search_index_missing() > 13
    assert sync.search_index_missing() == 0  # nothing left to do
    assert SearchEntry.objects.filter(feature__isnull=True).count() == 13
    assert catalog_search.search(user=viewer, q="tenur").hits[0].reference == "employee_features:tenure"
