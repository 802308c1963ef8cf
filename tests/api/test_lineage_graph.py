"""lineage_graph: the project's nodes and edges (browser and API), focus flags, constant queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from catalog.lineage import lineage_graph
from catalog.models import CatalogObject, Project
from catalog.services.consumers import model_consumer_register
from tests.api.conftest import PROJECT

pytestmark = pytest.mark.django_db


def nid(kind: str, name: str) -> str:
    return f"{kind}:{PROJECT}/{name}"


def obj(kind: str, name: str) -> CatalogObject:
    return CatalogObject.objects.get(project__name=PROJECT, kind=kind, name=name)


def test_the_demo_graph_has_every_object_in_its_column_and_the_registry_edges(synced: None, viewer: User) -> None:
    graph = lineage_graph(user=viewer, project=Project.objects.get(name=PROJECT))
    nodes = {n["id"]: n for n in graph["nodes"]}
    active = CatalogObject.objects.filter(project__name=PROJECT).exclude(status="removed")
    assert active.filter(kind="permission").exists()  # the demo's Feast permissions: who may act, not data flow
    assert set(nodes) == {nid(o.kind, o.name) for o in active.exclude(kind="permission")}
    columns = {n["name"]: n["column"] for n in graph["nodes"]}
    assert columns["employee_id"] == 0 and columns["employee_attrition"] == 0
    assert columns["employee_features"] == 1 and columns["employee_activity"] == 1
    assert columns["employee_risk_signals"] == 2
    assert columns["attrition_model_v1"] == 3 and columns["attrition_model_v2"] == 3
    assert [n["column"] for n in graph["nodes"]] == sorted(n["column"] for n in graph["nodes"])
    edges = {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
    assert (nid("data_source", "employee_attrition"), nid("feature_view", "employee_features"), "source_view") in edges
    assert (nid("entity", "employee_id"), nid("feature_view", "employee_features"), "entity_view") in edges
    assert (
        nid("feature_view", "employee_features"),
        nid("feature_view", "employee_risk_signals"),
        "view_view",
    ) in edges
    assert (
        nid("data_source", "scoring_request"),
        nid("feature_view", "employee_risk_signals"),
        "request_view",
    ) in edges
    assert (
        nid("feature_view", "department_features"),
        nid("feature_service", "attrition_model_v2"),
        "view_service",
    ) in edges
    assert nid("feature_view", "department_features") not in {
        s for s, t, _ in edges if t == nid("feature_service", "attrition_model_v1")
    }
    view = nodes[nid("feature_view", "employee_features")]
    assert view["url"] == f"/projects/{PROJECT}/feature-views/employee_features/"
    assert view["status"] == "active" and view["subkind"] == "batch" and view["project"] == PROJECT
    assert "is_focus" not in view
    assert all(e["source"] in nodes and e["target"] in nodes for e in graph["edges"])


def test_models_are_a_fifth_column_fed_by_their_services(synced: None, proposer: User) -> None:
    for service in ("attrition_model_v1", "attrition_model_v2"):
        model_consumer_register(
            actor=proposer, service=obj("feature_service", service), name="churn", version="1", owner="me"
        )
    graph = lineage_graph(user=proposer, project=Project.objects.get(name=PROJECT))
    models = [n for n in graph["nodes"] if n["kind"] == "model"]
    assert [(m["name"], m["column"]) for m in models] == [("churn@1", 4)]
    into_model = sorted(e["source"] for e in graph["edges"] if e["target"] == models[0]["id"])
    assert into_model == [nid("feature_service", "attrition_model_v1"), nid("feature_service", "attrition_model_v2")]
    assert graph["nodes"][-1]["kind"] == "model"


def test_focus_marks_upstream_and_downstream(synced: None, proposer: User) -> None:
    model_consumer_register(
        actor=proposer, service=obj("feature_service", "attrition_model_v2"), name="m", version="1", owner="me"
    )
    focus = obj("feature_view", "employee_risk_signals")
    graph = lineage_graph(user=proposer, project=focus.project, focus=focus)
    by_name = {n["name"]: n for n in graph["nodes"]}
    assert by_name["employee_risk_signals"]["is_focus"]
    assert [n["name"] for n in graph["nodes"] if n["is_focus"]] == ["employee_risk_signals"]
    ups = {n["name"] for n in graph["nodes"] if n["upstream_of_focus"]}
    downs = {n["name"] for n in graph["nodes"] if n["downstream_of_focus"]}
    assert {"employee_features", "scoring_request", "employee_attrition", "employee_id"} <= ups
    assert "department_features" not in ups and "employee_activity" not in ups
    assert downs == {"attrition_model_v2", "m@1"}


def test_removed_objects_leave_the_graph_with_their_edges(synced: None, viewer: User) -> None:
    CatalogObject.objects.filter(project__name=PROJECT, name="department_features").update(status="removed")
    graph = lineage_graph(user=viewer, project=Project.objects.get(name=PROJECT))
    ids = {n["id"] for n in graph["nodes"]}
    assert nid("feature_view", "department_features") not in ids
    assert all(e["source"] in ids and e["target"] in ids for e in graph["edges"])


def test_anonymous_users_get_an_empty_graph(synced: None) -> None:
    from django.contrib.auth.models import AnonymousUser

    assert lineage_graph(user=AnonymousUser(), project=Project.objects.get(name=PROJECT)) == {"nodes": [], "edges": []}


def test_the_graph_costs_a_constant_number_of_queries(
    synced: None, proposer: User, django_assert_max_num_queries: Any
) -> None:
    project = Project.objects.get(name=PROJECT)
    for i in range(20):
        model_consumer_register(
            actor=proposer, service=obj("feature_service", "attrition_model_v1"), name=f"m{i}", version="1", owner="x"
        )
    with django_assert_max_num_queries(3):
        graph = lineage_graph(user=proposer, project=project)
    assert len([n for n in graph["nodes"] if n["kind"] == "model"]) == 20
