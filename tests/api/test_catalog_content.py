"""What the catalog endpoints return: natural keys, the vector, filters, ordering, pages, history, as_of."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from catalog import feast_gateway
from catalog.models import CatalogObject, ObjectVersion
from tests.api.conftest import PROJECT, assert_error
from tests.catalog.test_sync import _edit, sync_one
from tests.conftest import run_feast

pytestmark = pytest.mark.django_db
P = f"/api/v1/projects/{PROJECT}"
# Days long before anything the catalog recorded and long after, derived from the clock (no calendar dates).
LONG_AGO = (timezone.now() - timedelta(days=365 * 25)).date().isoformat()
FAR_AHEAD = (timezone.now() + timedelta(days=365 * 70)).date().isoformat()


@pytest.fixture
def client(viewer: User, token_client: Callable[..., APIClient]) -> APIClient:
    return token_client(viewer, ["read"])


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [r["name"] for r in response.json()["results"]]


def test_a_feature_service_lists_its_vector_in_canonical_order(synced: None, client: APIClient) -> None:
    body = client.get(f"{P}/feature-services/attrition_model_v2/").json()
    assert body["kind"] == "feature_service" and body["features"] is None
    assert [(v["index"], v["feature_view"], v["feature"], v["dtype"]) for v in body["vector"]] == [
        (0, "employee_features", "overall_satisfaction", "Float32"),
        (1, "employee_features", "tenure", "Float32"),
        (2, "employee_features", "overtime", "Int64"),
        (3, "department_features", "attrition_rate_90d", "Float32"),
        (4, "department_features", "avg_satisfaction", "Float32"),
        (5, "employee_risk_signals", "satisfaction_x_overtime", "Float64"),
        (6, "employee_risk_signals", "review_overdue", "Int64"),
    ]
    assert body["url"] == f"{P}/feature-services/attrition_model_v2/"
    assert body["html_url"] == f"/projects/{PROJECT}/feature-services/attrition_model_v2/"


def test_objects_by_natural_key_carry_their_kind_fields(synced: None, client: APIClient) -> None:
    view = client.get(f"{P}/feature-views/employee_features/").json()
    assert [f["name"] for f in view["features"]] == [
        "tenure",
        "salary_band",
        "overtime",
        "promotion_stagnation",
        "career_velocity",
        "overall_satisfaction",
    ]
    assert view["entity_names"] == ["employee_id"] and view["ttl_seconds"] == 7 * 86400 and view["vector"] is None
    assert view["tags"]["domain"] == "people" and view["team"] == "people-analytics"
    entity = client.get(f"{P}/entities/employee_id/").json()
    assert entity["join_keys"] == ["employee_id"] and entity["value_type"] == "Int64"
    source = client.get(f"{P}/data-sources/scoring_request/").json()
    assert source["subkind"] == "request"
    features = client.get(f"{P}/features/", {"view": "department_features"}).json()["results"]
    assert [(f["view"], f["name"], f["position"]) for f in features] == [
        ("department_features", "headcount", 0),
        ("department_features", "attrition_rate_90d", 1),
        ("department_features", "avg_satisfaction", 2),
    ]


def test_lists_per_kind_and_across_projects(synced: None, client: APIClient) -> None:
    assert names(client.get("/api/v1/feature-services/")) == ["attrition_model_v1", "attrition_model_v2"]
    assert names(client.get(f"{P}/entities/")) == ["department_id", "employee_id"]
    every = names(client.get("/api/v1/objects/", {"page_size": 500}))
    assert len(every) == CatalogObject.objects.count()
    assert names(client.get("/api/v1/objects/", {"kind": "entity"})) == ["department_id", "employee_id"]


def test_filters_owner_tag_entity_status_updated_since(synced: None, client: APIClient) -> None:
    dept = CatalogObject.objects.get(name="department_features")
    assert names(client.get("/api/v1/feature-views/", {"owner": dept.owner})) == ["department_features"]
    assert names(client.get("/api/v1/feature-views/", {"tag": "domain:org"})) == ["department_features"]
    assert names(client.get("/api/v1/feature-views/", {"tag": "freshness"})) == ["employee_activity"]
    assert names(client.get("/api/v1/feature-views/", {"entity": "department_id"})) == ["department_features"]
    assert names(client.get("/api/v1/feature-views/", {"team": "hr-data-platform"})) == ["department_features"]
    assert names(client.get("/api/v1/feature-views/", {"subkind": "on_demand"})) == ["employee_risk_signals"]
    CatalogObject.objects.filter(pk=dept.pk).update(status="deprecated")
    assert names(client.get("/api/v1/feature-views/", {"status": "deprecated"})) == ["department_features"]
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert names(client.get("/api/v1/objects/", {"updated_since": future})) == []
    assert len(names(client.get("/api/v1/objects/", {"updated_since": f"{LONG_AGO}T00:00:00Z"}))) > 5


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"status": "gone"}, "status"),
        ({"kind": "table"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"status": ""}, "status"),
        ({"as_of": "not-a-date"}, "as_of"),
        ({"cursor": "bz14"}, "cursor"),
        ({"page_size": "x"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "²"}, "page_size"),
        ({"owner": "a\x00b"}, "owner"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_it(
    synced: None, client: APIClient, params: dict[str, str], bad: str
) -> None:
    response = client.get("/api/v1/objects/", params)
    error = assert_error(response, 400, "invalid")
    assert bad in error["details"] and bad in error["message"]


def test_diff_parameters_are_validated(synced: None, client: APIClient) -> None:
    error = assert_error(client.get(f"{P}/feature-views/employee_features/diff/", {"from": "x", "to": 1}), 400)
    assert "from" in error["details"]
    error = assert_error(client.get(f"{P}/feature-views/employee_features/diff/", {"from": "²", "to": 1}), 400)
    assert "from" in error["details"]
    error = assert_error(client.get(f"{P}/feature-views/employee_features/diff/", {"from": 1}), 400)
    assert "to" in error["details"]
    focus = assert_error(client.get(f"{P}/lineage/", {"focus": "employee_features"}), 400)
    assert "focus" in focus["details"]


def test_ordering_and_cursor_pages(synced: None, client: APIClient) -> None:
    assert names(client.get("/api/v1/entities/", {"ordering": "-name"})) == ["employee_id", "department_id"]
    seen: list[str] = []
    url: str | None = "/api/v1/objects/?page_size=3"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [f"{r['kind']}:{r['name']}" for r in body["results"]]
        url = body["next"]
        pages += 1
    total = CatalogObject.objects.count()
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 3)


def test_lineage_endpoint_returns_the_graph_with_focus(synced: None, client: APIClient) -> None:
    body = client.get(f"{P}/lineage/", {"focus": "feature-views/department_features"}).json()
    focus = [n for n in body["nodes"] if n["is_focus"]]
    assert [n["name"] for n in focus] == ["department_features"]
    downs = {n["name"] for n in body["nodes"] if n["downstream_of_focus"]}
    assert downs == {"attrition_model_v2"}
    assert any(e["kind"] == "view_service" for e in body["edges"])
    same = client.get(f"{P}/lineage/", {"focus": "feature_view:department_features"}).json()
    assert same == body


def test_history_versions_diff_and_as_of(
    viewer: User, token_client: Callable[..., APIClient], editable_demo_repo: feast_gateway.RepoRef
) -> None:
    sync_one()
    between = timezone.now()
    _edit(editable_demo_repo.path / "features.py", "ttl=timedelta(days=45)", "ttl=timedelta(days=30)")
    run_feast(editable_demo_repo, "apply")
    sync_one()
    client = token_client(viewer, ["read"])
    base = f"{P}/feature-views/department_features"
    history = client.get(f"{base}/history/").json()["results"]
    assert [(h["version"], h["change"]) for h in history] == [(2, "changed"), (1, "added")]
    assert history[0]["out_of_band"] is True and any("ttl" in str(c) for c in history[0]["changes"])
    v1 = client.get(f"{base}/versions/1/").json()
    assert (
        v1["version"] == 1
        and v1["snapshot"] == ObjectVersion.objects.get(object__name="department_features", version=1).snapshot
    )
    diff = client.get(f"{base}/diff/", {"from": 1, "to": 2}).json()
    assert diff["from_version"] == 1 and any(c["path"].startswith("ttl") for c in diff["changes"])
    then = client.get("/api/v1/feature-views/", {"as_of": between.isoformat(), "name": "department"}).json()["results"]
    assert [(r["name"], r["as_of_version"]) for r in then] == [("department_features", 1)]
    before_anything = client.get("/api/v1/objects/", {"as_of": LONG_AGO}).json()["results"]
    assert before_anything == []


@pytest.mark.parametrize("param", ["updated_since", "as_of"])
def test_dates_outside_utc_range_are_a_400_not_a_500(synced: None, client: APIClient, param: str) -> None:
    error = assert_error(client.get("/api/v1/objects/", {param: "0001-01-01T00:00:00+05:00"}), 400)
    assert param in error["details"]


def test_extreme_offsets_are_normalised_to_utc(synced: None, client: APIClient) -> None:
    assert client.get("/api/v1/objects/", {"updated_since": "0746-02-27T06:12:32-23:57"}).status_code == 200
    assert client.get("/api/v1/objects/", {"updated_since": f"{LONG_AGO}T00:00:00-23:57"}).status_code == 200
    assert client.get("/api/v1/objects/", {"as_of": f"{FAR_AHEAD}T00:00:00+23:59"}).status_code == 200


def test_null_characters_are_a_400_or_404_never_a_500(synced: None, client: APIClient) -> None:
    assert "view" in assert_error(client.get(f"{P}/features/", {"view": "a\x00"}), 400)["details"]
    assert "focus" in assert_error(client.get(f"{P}/lineage/", {"focus": "feature_view:a\x00"}), 400)["details"]
    assert "owner" in assert_error(client.get("/api/v1/search/", {"q": "x", "owner": "\x00"}), 400)["details"]
    assert_error(client.get(f"{P}/entities/a%00b/"), 404)


@pytest.mark.parametrize("position", ["not-a-date", "a\x00b", f"{LONG_AGO} 00:00:00-23:59"])
def test_a_tampered_cursor_is_a_400(synced: None, client: APIClient, position: str) -> None:
    import base64
    from urllib.parse import urlencode

    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    error = assert_error(client.get("/api/v1/objects/", {"ordering": "-updated_at", "cursor": cursor}), 400)
    assert "cursor" in error["details"]
    ok = base64.b64encode(urlencode({"p": f"{LONG_AGO} 00:00:00+00:00"}).encode()).decode()
    assert client.get("/api/v1/objects/", {"ordering": "-updated_at", "cursor": ok}).status_code == 200
