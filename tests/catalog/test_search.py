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
        assert (results.total, list(results.hits)) == (0, []), q  # no object has such a kind or tag
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

    monkeypatch.setattr(sync, "INLINE_INDEX_LIMIT", 3)  # the demo's 15 objects count as a large import
    run = sync.registry_sync(index=False)[0]
    assert run.status == "succeeded" and run.added == 15
    assert not SearchEntry.objects.exists()  # the catalog transaction committed without the index
    assert sync.search_index_missing() > 15
    assert sync.search_index_missing() == 0  # nothing left to do
    assert SearchEntry.objects.filter(feature__isnull=True).count() == 15
    assert catalog_search.search(user=viewer, q="tenur").hits[0].reference == "employee_features:tenure"


def test_ranking_tiers_are_name_then_related_names_then_descriptions(viewer: Any, synced: None) -> None:
    results = catalog_search.search(user=viewer, q="attrition", per_page=100)
    score = {h.reference: h.score for h in results.hits}
    assert score["attrition_model_v1"] == 8.0  # the name starts with the word
    assert score["employee_attrition"] == 6.0  # the word is in the name
    assert score["employee_features"] == 4.0  # ... in a related name (its source, employee_attrition)
    assert score["employee_risk_signals"] == 2.0  # ... only in its description
    scores = [h.score for h in results.hits]
    assert scores == sorted(scores, reverse=True)
    assert catalog_search.search(user=viewer, q="tenure").hits[0].score == 10.0  # the exact name


@pytest.fixture
def broad(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the small demo catalog behave like a large one: every count past 0 is estimated, from a 1-in-2
    sample of the matches (the real thresholds are 2,000 matches and 1-in-16)."""
    monkeypatch.setattr(catalog_search, "EXACT_LIMIT", 0)
    monkeypatch.setattr(catalog_search, "PROBE_SCALE", 2)


def test_estimates_are_rounded_and_labelled() -> None:
    assert [catalog_search.about(n) for n in (7, 99, 999, 2536, 17792)] == [7, 99, 1000, 2500, 18000]
    estimated = catalog_search.SearchResults(
        q="x", filters={}, total=18000, page=3, total_exact=False, facets_exact=False, has_next=True
    )
    estimated.sample_size, estimated.sample_rate = 1112, 16
    assert estimated.total_label == "about 18,000 results"
    assert estimated.pages == 900
    assert "1-in-16 sample" in estimated.estimate_note and "1,112 counted" in estimated.estimate_note
    # An estimate never hides a page the ranking has: "next" comes from the ranking itself.
    short = catalog_search.SearchResults(q="x", filters={}, total=40, page=2, total_exact=False, has_next=True)
    assert short.pages == 3
    exact = catalog_search.SearchResults(q="x", filters={}, total=1)
    assert exact.total_label == "1 result" and exact.estimate_note == ""


def test_broad_searches_estimate_their_counts_and_say_so(
    client: Client, viewer: Any, synced: None, broad: None
) -> None:
    results = catalog_search.search(user=viewer, q="employee", per_page=5)
    assert not results.total_exact and not results.facets_exact
    assert results.sample_rate == 2 and results.sample_size > 0
    assert results.total == catalog_search.about(2 * results.sample_size)
    assert results.hits[0].reference == "employee_activity"  # the ranking itself is not estimated
    filtered = catalog_search.search(user=viewer, q="employee", filters={"kind": "feature"}, per_page=5)
    assert not filtered.total_exact and {h.kind for h in filtered.hits} == {"feature"}
    assert dict(filtered.facets["kind"]) == {"feature": filtered.total}
    client.force_login(viewer)
    broader = catalog_search.search(user=viewer, q="e")  # a page of 20 does not hold every match
    body = client.get("/search/", {"q": "e"}).content.decode()
    assert 'data-estimate="true"' in body and f"about {broader.total} results" in body
    assert "≈" in body and "1-in-2 sample" in body and "Page 1 of about" in body and 'rel="next"' in body


def _all_pages(viewer: Any, q: str, **kwargs: Any) -> tuple[list[int], catalog_search.SearchResults]:
    ids: list[int] = []
    page = 1
    while True:
        results = catalog_search.search(user=viewer, q=q, page=page, per_page=3, **kwargs)
        assert results.page == page
        ids += [h.id for h in results.hits]
        if not results.has_next:
            return ids, results
        page += 1


def test_estimated_searches_page_through_every_match_in_the_ranking_order(
    viewer: Any, synced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = catalog_search.search(user=viewer, q="employee", per_page=100)
    assert exact.total_exact and exact.total == 20
    monkeypatch.setattr(catalog_search, "EXACT_LIMIT", 0)
    monkeypatch.setattr(catalog_search, "PROBE_SCALE", 2)
    ids, last = _all_pages(viewer, "employee")
    assert ids == [h.id for h in exact.hits]  # the same order, past the estimate, page after page
    assert last.total_exact and last.total == exact.total  # the last page knows the total
    beyond = catalog_search.search(user=viewer, q="employee", per_page=3, page=999)
    assert beyond.page == beyond.pages == 7 and beyond.hits and beyond.total == 20


def test_large_tiers_in_index_order_still_page_without_gaps_or_repeats(
    viewer: Any, synced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.search import backends

    cases: list[tuple[str, dict[str, str]]] = [
        ("employee", {}),
        ("people analytics", {}),
        ("employee", {"kind": "feature"}),
    ]
    expected = [{h.id for h in catalog_search.search(user=viewer, q=q, filters=f, per_page=100).hits} for q, f in cases]
    monkeypatch.setattr(catalog_search, "EXACT_LIMIT", 0)
    monkeypatch.setattr(catalog_search, "PROBE_SCALE", 2)
    monkeypatch.setattr(backends, "SORT_LIMIT", 0)  # every tier counts as large: listed in index order
    for (q, filters), want in zip(cases, expected, strict=True):
        ids, last = _all_pages(viewer, q, filters=filters)
        assert len(ids) == len(set(ids)) and set(ids) == want, q
        assert last.total_exact and last.total == len(want)


def test_typos_are_corrected_to_words_that_still_name_something(viewer: Any, synced: None) -> None:
    from catalog.models.search import SearchTerm

    SearchTerm.objects.create(kind="word", value="satisfacton")  # a stale word: no name holds it any more
    results = catalog_search.search(user=viewer, q="satisfacton")
    assert results.corrected == "satisfaction" and results.q == "satisfacton"
    assert "overall_satisfaction" in [h.name for h in results.hits]
    assert str(results.hits[0].name_html).count("<mark>satisfaction</mark>") == 1


def test_the_vocabulary_follows_the_index(viewer: Any, synced: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.models.search import SearchTerm
    from catalog.search import indexing

    words = set(SearchTerm.objects.filter(kind="word").values_list("value", flat=True))
    assert {"tenure", "satisfaction", "employee", "attrition"} <= words
    assert not {w for w in words if w.isdigit() or len(w) < 3}
    owners = set(SearchTerm.objects.filter(kind="owner").values_list("value", flat=True))
    assert {"people-analytics", "people-analytics@example.com"} <= owners
    SearchTerm.objects.create(kind="owner", value="gone-team")
    assert "gone-team" not in [h.name for h in catalog_search.suggest(user=viewer, q="gone-te")]
    monkeypatch.setattr(indexing, "FLUSH_AFTER", 1)  # a "large" rebuild: the GIN pending list is merged too
    rebuild_index()
    assert not SearchTerm.objects.filter(value="gone-team").exists()
    assert set(SearchTerm.objects.filter(kind="word").values_list("value", flat=True)) == words


def test_a_sample_that_misses_a_broad_search_is_caught(
    viewer: Any, synced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1-in-256 sample of the demo's 20 "employee" matches is (nearly always) empty: it suggests an exact
    # count, which stops at 4 × EXACT_LIMIT; the total is then an estimate of at least that many, and the
    # ranking still pages through every match.
    monkeypatch.setattr(catalog_search, "EXACT_LIMIT", 1)
    monkeypatch.setattr(catalog_search, "PROBE_SCALE", 256)
    first = catalog_search.search(user=viewer, q="employee", per_page=3)
    assert not first.total_exact and first.total >= 5 and first.has_next
    ids, last = _all_pages(viewer, "employee")
    assert len(set(ids)) == len(ids) == 20 and last.total == 20 and last.total_exact
