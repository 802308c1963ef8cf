"""Discovery pages: feature, owner/team, lineage, models (register, show, unregister), roles, long text, errors."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import AuditEvent, CatalogObject, ModelConsumer, Project, Team
from catalog.search.indexing import index_objects
from tests.catalog.test_sync import sync_one

pytestmark = pytest.mark.django_db

SERVICE = "/projects/employee_attrition/feature-services/attrition_model_v1/"


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef) -> None:
    assert sync_one().status == "succeeded"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/projects/employee_attrition/feature-views/employee_features/features/tenure/",
            ["Years since hire.", "attrition_model_v1", "attrition_model_v2", "employee_features:tenure"],
        ),
        ("/owners/people-analytics/", ["employee_features", "attrition_model_v1", "Team"]),
        ("/projects/employee_attrition/lineage/", ["lineage-data", "employee_attrition"]),
        (
            "/projects/employee_attrition/lineage/?focus=feature_view:employee_features",
            ["Lineage of employee_features"],
        ),
    ],
)
def test_discovery_pages_render_with_a_bounded_number_of_queries(
    client: Client, viewer: Any, synced: None, path: str, expected: list[str], django_assert_max_num_queries: Any
) -> None:
    client.force_login(viewer)
    with django_assert_max_num_queries(12):
        response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    for text in expected:
        assert text in body


def test_the_feature_page_gives_each_service_position(client: Client, viewer: Any, synced: None) -> None:
    client.force_login(viewer)
    body = client.get(
        "/projects/employee_attrition/feature-views/employee_features/features/overall_satisfaction/"
    ).content.decode()
    text = re.sub(r"<[^>]+>", "", body)
    assert re.search(r"attrition_model_v1\s+at index\s+5", text)
    assert re.search(r"attrition_model_v2\s+at index\s+0", text)


def test_the_view_page_shows_freshness_usage_and_fetch_snippets(client: Client, viewer: Any, synced: None) -> None:
    client.force_login(viewer)
    body = client.get("/projects/employee_attrition/feature-views/employee_features/").content.decode()
    assert "data-freshness=" in body
    assert "attrition_model_v1[0], attrition_model_v2[1]" in body  # tenure is used at these positions
    assert "get_online_features" in body and "/get-online-features" in body
    # The Python snippet builds the vector in the declared order.
    order = re.findall(r"&quot;employee_features__(\w+)&quot;", body)
    assert order[:6] == [
        "tenure",
        "salary_band",
        "overtime",
        "promotion_stagnation",
        "career_velocity",
        "overall_satisfaction",
    ]


def test_the_lineage_graph_json_flows_left_to_right_and_highlights_the_focus(
    client: Client, viewer: Any, synced: None
) -> None:
    client.force_login(viewer)
    body = client.get(
        "/projects/employee_attrition/lineage/", {"focus": "feature_service:attrition_model_v1"}
    ).content.decode()
    raw = re.search(r'<script id="lineage-data" type="application/json">(.*?)</script>', body, re.DOTALL)
    assert raw is not None
    graph = json.loads(raw.group(1))
    nodes = {n["name"]: n for n in graph["nodes"]}
    for edge in graph["edges"]:
        source = next(n for n in graph["nodes"] if n["id"] == edge["source"])
        target = next(n for n in graph["nodes"] if n["id"] == edge["target"])
        assert source["column"] <= target["column"], edge
    assert nodes["attrition_model_v1"]["is_focus"]
    assert nodes["employee_features"]["upstream_of_focus"]
    assert nodes["employee_attrition"]["upstream_of_focus"]
    assert not nodes["department_features"].get("upstream_of_focus")
    assert nodes["employee_attrition"]["url"].endswith("/data-sources/employee_attrition/")


def test_a_proposer_registers_a_model_and_it_shows_everywhere(
    client: Client, proposer: Any, viewer: Any, synced: None
) -> None:
    client.force_login(proposer)
    form = client.get(SERVICE + "register-model/")
    assert form.status_code == 200
    response = client.post(
        SERVICE + "register-model/",
        {
            "name": "attrition-classifier",
            "version": "3",
            "owner": "people-analytics",
            "link": "https://mlflow.example.com/models/attrition",
        },
    )
    assert response.status_code == 302
    model = ModelConsumer.objects.get(name="attrition-classifier")
    assert model.team == Team.objects.get(name="people-analytics")
    assert AuditEvent.objects.filter(object_id=str(model.pk)).exists()
    client.force_login(viewer)
    service_page = client.get(SERVICE).content.decode()
    assert "attrition-classifier@3" in service_page
    assert "Nothing uses this yet" not in service_page  # the model is downstream of the service
    lineage = client.get("/projects/employee_attrition/lineage/").content.decode()
    assert "attrition-classifier" in lineage
    page = client.get(f"/models/{model.pk}/").content.decode().replace("<wbr>", "")  # a reference may wrap at ":"
    assert "employee_features:tenure" in page
    # The same model twice is refused with a clear message, and nothing changes.
    client.force_login(proposer)
    again = client.post(SERVICE + "register-model/", {"name": "attrition-classifier", "version": "3", "owner": "x"})
    assert again.status_code == 200 and "already" in again.content.decode().lower()
    assert ModelConsumer.objects.count() == 1
    # A viewer may not register, nor unregister someone else's model.
    client.force_login(viewer)
    assert client.get(SERVICE + "register-model/").status_code == 403
    client.post(f"/models/{model.pk}/delete/")
    assert ModelConsumer.objects.filter(pk=model.pk).exists()
    client.force_login(proposer)
    assert client.post(f"/models/{model.pk}/delete/").status_code == 302
    assert not ModelConsumer.objects.filter(pk=model.pk).exists()


def test_bad_model_input_is_a_form_error(client: Client, proposer: Any, synced: None) -> None:
    client.force_login(proposer)
    response = client.post(SERVICE + "register-model/", {"name": "", "version": "1", "owner": "", "link": "not a url"})
    assert response.status_code == 200
    assert ModelConsumer.objects.count() == 0
    assert "This field is required." in response.content.decode()


def test_roles_are_enforced_on_every_discovery_page(client: Client, outsider: Any, synced: None) -> None:
    paths = [
        "/",
        "/search/?q=tenure",
        "/search/suggest/?q=ten",
        "/projects/employee_attrition/",
        "/projects/employee_attrition/lineage/",
        SERVICE,
        "/projects/employee_attrition/feature-views/employee_features/features/tenure/",
        "/owners/people-analytics/",
    ]
    for path in paths:
        assert client.get(path).status_code == 302, path  # anonymous: to login
    client.force_login(outsider)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "no portal role" in response.content.decode()


def test_unknown_things_are_helpful_404s(client: Client, viewer: Any, synced: None) -> None:
    client.force_login(viewer)
    for path in [
        "/owners/nobody-at-all/",
        "/models/999999/",
        "/projects/employee_attrition/feature-views/employee_features/features/nope/",
        "/projects/employee_attrition/lineage/?focus=feature_view:nope",
        "/projects/employee_attrition/lineage/?focus=garbage",
        "/projects/nope/lineage/",
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "searching the catalog" in response.content.decode()


def test_very_long_names_and_descriptions_render(client: Client, viewer: Any, synced: None) -> None:
    project = Project.objects.get(name="employee_attrition")
    long_name = "a_really_long_feature_view_name_" * 7
    long_name = long_name[:255]
    obj = CatalogObject.objects.create(
        project=project,
        kind="feature_view",
        name=long_name,
        description="word " * 2000,
        owner="o" * 200 + "@example.com",
        tags={"k" * 50: "v" * 200},
        content_hash="x",
        subkind="batch",
    )
    index_objects([obj.pk])
    client.force_login(viewer)
    page = client.get(obj.get_absolute_url())
    assert page.status_code == 200
    assert long_name in page.content.decode()
    found = client.get("/search/", {"q": "a_really_long_feature"}).content.decode()
    assert "a_really_long" in found and "…" in found  # the description snippet is cut
    assert client.get("/projects/employee_attrition/").status_code == 200


def test_an_empty_catalog_has_helpful_empty_states(client: Client, viewer: Any) -> None:
    client.force_login(viewer)
    home = client.get("/").content.decode()
    assert "No registry changes recorded yet" in home and "none yet" in home
    assert "Nothing matches" in client.get("/search/", {"q": "tenure"}).content.decode()
