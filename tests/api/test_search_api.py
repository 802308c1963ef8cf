"""/api/v1/search/: the browser's ranking, filters, validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "params",
    [{"q": "satisfaction"}, {"q": "employee"}, {"q": "employee", "kind": "feature_view"}, {"q": "tenur"}],
)
def test_the_api_returns_the_browsers_ranking(
    synced: None, viewer: User, token_client: Callable[..., APIClient], client: Client, params: dict[str, str]
) -> None:
    from catalog.views_discovery import PER_PAGE

    api = token_client(viewer, ["read"]).get("/api/v1/search/", {**params, "page_size": PER_PAGE}).json()
    client.force_login(viewer)
    page = client.get("/search/", params)
    browser = page.context["results"]
    assert api["total"] == browser.total > 0
    assert [(r["kind"], r["project"], r["parent"], r["name"]) for r in api["results"]] == [
        (h.kind, h.project, h.parent, h.name) for h in browser.hits
    ]
    assert {k: [(f["value"], f["count"]) for f in v] for k, v in api["facets"].items()} == {
        k: list(v) for k, v in browser.facets.items()
    }


def test_search_filters_and_features(synced: None, viewer: User, token_client: Callable[..., APIClient]) -> None:
    client = token_client(viewer, ["read"])
    features = client.get("/api/v1/search/", {"q": "tenure", "kind": "feature"}).json()["results"]
    assert features and all(r["kind"] == "feature" for r in features)
    assert "employee_features:tenure" in [r["reference"] for r in features]
    org = client.get("/api/v1/search/", {"q": "department", "tag": "domain:org", "kind": "feature_view"}).json()
    assert [r["name"] for r in org["results"]] == ["department_features"]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({}, "q"),
        ({"q": "x", "kind": "table"}, "kind"),
        ({"q": "x", "page": "0"}, "page"),
        ({"q": "x", "page": ""}, "page"),
        ({"q": "x", "page": "²"}, "page"),
        ({"q": "x", "page_size": "1000"}, "page_size"),
    ],
)
def test_bad_search_parameters_are_a_400_naming_them(
    synced: None, viewer: User, token_client: Callable[..., APIClient], params: dict[str, str], bad: str
) -> None:
    error = assert_error(token_client(viewer, ["read"]).get("/api/v1/search/", params), 400, "invalid")
    assert bad in error["details"]


def test_search_needs_auth_scope_and_role(
    synced: None, outsider: User, operator: User, token_client: Callable[..., APIClient]
) -> None:
    assert_error(APIClient().get("/api/v1/search/", {"q": "x"}), 401)
    assert_error(token_client(operator, ["operate"]).get("/api/v1/search/", {"q": "x"}), 403)
    assert_error(token_client(outsider, ["read"]).get("/api/v1/search/", {"q": "x"}), 403)


def test_a_broad_search_pages_through_the_api_in_the_browsers_order(
    synced: None,
    viewer: User,
    token_client: Callable[..., APIClient],
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from catalog import search as catalog_search

    exact = [h.reference for h in catalog_search.search(user=viewer, q="employee", per_page=100).hits]
    # Past the exact-count limit (lowered here to 0, from a 1-in-2 sample) totals are estimates, paging is not.
    monkeypatch.setattr(catalog_search, "EXACT_LIMIT", 0)
    monkeypatch.setattr(catalog_search, "PROBE_SCALE", 2)
    api = token_client(viewer, ["read"])
    refs: list[str] = []
    page = 1
    while True:
        body = api.get("/api/v1/search/", {"q": "employee", "page_size": 3, "page": page}).json()
        refs += [r["reference"] for r in body["results"]]
        if page >= body["pages"]:
            break
        page += 1
    assert refs == exact
    assert body["total"] == len(exact)  # the last page counted every match
    client.force_login(viewer)
    first = client.get("/search/", {"q": "employee"}).context["results"]
    assert [h.reference for h in first.hits] == exact[:20]


def test_the_api_says_whether_counts_are_exact(
    synced: None, viewer: User, token_client: Callable[..., APIClient]
) -> None:
    body = token_client(viewer, ["read"]).get("/api/v1/search/?q=tenure").json()
    assert body["total_exact"] is True and body["facets_exact"] is True
    assert body["total"] >= 1 and body["has_next"] is (body["pages"] > 1)
