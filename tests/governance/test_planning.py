"""Plans: proposals from edits, the field-level diff, and the breaking-change rules (real registry)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.exceptions import InvalidInput, RegistryCorrupt
from catalog.models import ChangeRequest, Project
from catalog.services.change_requests import change_request_create
from tests.governance.conftest import PROJECT, register_model

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def create(author: User, *edits: dict[str, Any], title: str = "change") -> ChangeRequest:
    return change_request_create(actor=author, project=PROJECT, title=title, edits=list(edits))


def items(cr: ChangeRequest, name: str) -> list[dict[str, Any]]:
    return next(o["items"] for o in cr.plan["objects"] if o["name"] == name)


def rules(cr: ChangeRequest, name: str) -> dict[str, str]:
    return {i["rule"]: i["severity"] for i in items(cr, name)}


def test_dtype_change_is_breaking_and_cascades_into_the_service_vector(people: dict[str, User]) -> None:
    register_model()
    cr = create(
        people["author"], {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Int64"}
    )
    assert cr.severity == "breaking"
    assert rules(cr, "employee_features")["view.dtype_changed"] == "breaking"
    # checked against the source data: the parquet column is Float32, so the reviewers are told it truncates
    assert cr.plan["warnings"] == [
        (
            "view 'employee_features': field 'tenure' is Int64, but column 'tenure' of data source 'employee_attrition' "
            "is Float32: Feast converts the values and loses information"
        )
    ]
    service = next(s for s in cr.plan["services"] if s["name"] == "attrition_model_v1")
    assert service["before"][0] == {
        "index": 0,
        "view": "employee_features",
        "alias": "",
        "feature": "tenure",
        "dtype": "Float32",
    }
    assert service["after"][0]["dtype"] == "Int64"
    assert rules(cr, "attrition_model_v1")["service.vector_consumed"] == "breaking"
    assert cr.plan["impact"]["models"][0]["name"] == "attrition-clf"
    assert cr.required_approvals == 2
    assert [t["name"] for t in cr.required_teams] == ["people-analytics"]
    # The stored protos are exactly what the plan shows.
    upserts = {u["name"] for u in cr.proposal["upserts"]}
    assert upserts == {"employee_features", "attrition_model_v1", "attrition_model_v2"}


def test_widening_is_risky_under_backward_and_breaking_under_full(people: dict[str, User]) -> None:
    edit = {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Float64"}
    cr = create(people["author"], edit)
    assert rules(cr, "employee_features")["view.dtype_widened"] == "risky"
    Project.objects.filter(name=PROJECT).update(compatibility="FULL")
    cr = create(people["author"], edit)
    assert rules(cr, "employee_features")["view.dtype_widened"] == "breaking"  # the rules table's FULL column


def test_compatibility_none_keeps_only_key_changes_breaking(people: dict[str, User]) -> None:
    Project.objects.filter(name=PROJECT).update(compatibility="NONE")
    cr = create(
        people["author"], {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Int64"}
    )
    assert rules(cr, "employee_features")["view.dtype_changed"] == "risky"
    assert cr.severity == "risky"
    assert cr.required_approvals == 1


def test_removing_a_field_a_service_reads_is_breaking_and_shown_in_the_vector(people: dict[str, User]) -> None:
    cr = create(people["author"], {"op": "remove_field", "view": "department_features", "field": "attrition_rate_90d"})
    assert rules(cr, "department_features")["view.field_removed_in_use"] == "breaking"
    v2 = next(s for s in cr.plan["services"] if s["name"] == "attrition_model_v2")
    assert [e["feature"] for e in v2["before"]][3:5] == ["attrition_rate_90d", "avg_satisfaction"]
    assert [e["feature"] for e in v2["after"]][3:4] == ["avg_satisfaction"]
    # No model registered: the vector change itself is risky, the field removal breaking.
    assert rules(cr, "attrition_model_v2")["service.vector"] == "risky"


def test_removing_an_unread_field_is_risky(people: dict[str, User]) -> None:
    cr = create(people["author"], {"op": "remove_field", "view": "department_features", "field": "headcount"})
    assert rules(cr, "department_features") == {"view.field_removed": "risky"}


def test_removing_a_field_the_on_demand_view_reads_is_refused(people: dict[str, User]) -> None:
    # employee_risk_signals reads overall_satisfaction and overtime: the end state would be inconsistent.
    with pytest.raises(InvalidInput, match="employee_risk_signals"):
        create(people["author"], {"op": "remove_field", "view": "employee_features", "field": "overall_satisfaction"})
    assert ChangeRequest.objects.count() == 0


def test_ttl_decrease_is_risky_and_breaking_with_consumers(people: dict[str, User]) -> None:
    edit = {"op": "set_ttl", "view": "employee_features", "ttl_seconds": 86400}
    assert rules(create(people["author"], edit), "employee_features")["view.ttl_decreased"] == "risky"
    register_model()
    assert rules(create(people["author"], edit), "employee_features")["view.ttl_decreased_consumed"] == "breaking"
    longer = {"op": "set_ttl", "view": "employee_features", "ttl_seconds": 30 * 86400}
    assert rules(create(people["author"], longer), "employee_features")["view.ttl_increased"] == "safe"


def test_metadata_only_changes_are_safe(people: dict[str, User]) -> None:
    cr = create(
        people["author"],
        {"op": "set_metadata", "kind": "feature_view", "name": "department_features", "description": "Better words."},
    )
    assert cr.severity == "safe"
    assert cr.required_approvals == 1
    assert [t["name"] for t in cr.required_teams] == ["hr-data-platform"]
    feast_props = cr.plan["objects"][0]["feast_plan"]["properties"]
    assert [p["property"] for p in feast_props] == ["description"], feast_props


def test_adding_a_field_is_safe_and_the_service_keeps_its_vector(people: dict[str, User]) -> None:
    cr = create(
        people["author"], {"op": "add_field", "view": "department_features", "field": "leavers", "dtype": "Int64"}
    )
    assert rules(cr, "department_features") == {"view.field_added": "safe"}
    changes = cr.plan["objects"][0]["changes"]
    assert any(c["path"] == "features[leavers]" and c["change"] == "added" for c in changes)


@pytest.mark.parametrize(
    ("field", "dtype", "message"),
    [
        (
            "open_roles",
            "Int64",
            (
                "view 'department_features': field 'open_roles' is not a column of data source 'department_stats' "
                "(its columns: department_id Int64, event_timestamp UnixTimestamp, headcount Int64, attrition_rate_90d "
                "Float32, avg_satisfaction Float32, leavers Int64)"
            ),
        ),
        (
            "leavers",
            "UnixTimestamp",
            (
                "view 'department_features': field 'leavers' is UnixTimestamp, but column 'leavers' of data source "
                "'department_stats' is Int64"
            ),
        ),
    ],
)
def test_a_field_the_source_lacks_or_cannot_hold_is_refused_at_plan_time(
    people: dict[str, User], field: str, dtype: str, message: str
) -> None:
    edit = {"op": "add_field", "view": "department_features", "field": field, "dtype": dtype}
    with pytest.raises(InvalidInput) as refused:
        create(people["author"], edit)
    assert str(refused.value) == f"the change does not match the source data: {message}"
    assert not ChangeRequest.objects.exists()


def test_removing_a_feature_from_a_consumed_service_is_breaking(people: dict[str, User]) -> None:
    register_model("attrition_model_v2", "attrition-v2")
    cr = create(
        people["author"],
        {
            "op": "remove_from_service",
            "service": "attrition_model_v2",
            "view": "employee_features",
            "feature": "tenure",
        },
    )
    assert rules(cr, "attrition_model_v2")["service.vector_consumed"] == "breaking"
    v2 = cr.plan["services"][0]
    assert len(v2["after"]) == len(v2["before"]) - 1


def test_deprecating_a_view_is_risky_metadata(people: dict[str, User]) -> None:
    cr = create(
        people["author"], {"op": "deprecate", "kind": "feature_view", "name": "employee_activity", "reason": "use v2"}
    )
    assert rules(cr, "employee_activity")["metadata.deprecated"] == "risky"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"op": "change_dtype", "view": "nope", "field": "tenure", "dtype": "Int64"}, "does not exist"),
        ({"op": "change_dtype", "view": "employee_features", "field": "nope", "dtype": "Int64"}, "has no field"),
        (
            {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Decimal128"},
            "unknown dtype",
        ),
        ({"op": "add_field", "view": "employee_features", "field": "tenure", "dtype": "Int64"}, "already has"),
        ({"op": "add_field", "view": "employee_features", "field": "bad name", "dtype": "Int64"}, "not a valid field"),
        ({"op": "set_ttl", "view": "employee_features", "ttl_seconds": -5}, "ttl_seconds"),
        ({"op": "explode"}, "unknown op"),
        ({"op": "set_ttl", "view": "employee_features", "ttl_seconds": True}, "ttl_seconds"),
        ({"op": "set_metadata", "kind": "entity", "name": "employee_id"}, "needs description, owner or tags"),
        ({"op": "set_metadata", "kind": "entity", "name": "employee_id", "tags": ["a"]}, "tags"),
        ({"op": "deprecate", "kind": "entity", "name": "employee_id"}, "kind"),
        ({"op": "remove_from_service", "service": "attrition_model_v1", "view": "employee_features"}, "feature"),
        ({"op": "delete", "kind": "feature_view", "name": "employee_features"}, "deletes"),
    ],
)
def test_bad_edits_are_refused_and_change_nothing(
    people: dict[str, User], synced: feast_gateway.RepoRef, edit: dict[str, Any], message: str
) -> None:
    before = feast_gateway.registry_fingerprint(synced)
    with pytest.raises(InvalidInput, match=message):
        create(people["author"], edit)
    assert ChangeRequest.objects.count() == 0
    assert feast_gateway.registry_fingerprint(synced) == before


def _modified(repo: feast_gateway.RepoRef, kind: str, name: str, change: Any) -> feast_gateway.ObjectProto:
    current = feast_gateway.project_protos(repo, PROJECT, [(kind, name)])[(kind, name)]
    message = current.message()
    change(message)
    return feast_gateway.object_proto(message, PROJECT)


def _plan_objects(repo: feast_gateway.RepoRef, *objects: feast_gateway.ObjectProto) -> Any:
    from catalog.services.planning import plan_proposal, proposal_from_objects

    project = Project.objects.get(name=PROJECT)
    return plan_proposal(repo, project, proposal_from_objects(repo, project, list(objects), mode="partial"))


def test_a_join_key_change_is_breaking_even_under_none(people: dict[str, User], synced: feast_gateway.RepoRef) -> None:
    Project.objects.filter(name=PROJECT).update(compatibility="NONE")

    def rekey(message: Any) -> None:
        message.spec.join_key = "employee_uuid"

    plan = _plan_objects(synced, _modified(synced, "entity", "employee_id", rekey))
    items = plan.diff["objects"][0]["items"]
    assert ("entity.join_key", "breaking") in [(i["rule"], i["severity"]) for i in items]
    assert plan.severity == "breaking"


def test_a_source_change_is_risky(people: dict[str, User], synced: feast_gateway.RepoRef) -> None:
    def move(message: Any) -> None:
        message.file_options.uri = "data/department_stats_v2.parquet"

    plan = _plan_objects(synced, _modified(synced, "data_source", "department_stats", move))
    assert [(i["rule"], i["severity"]) for i in plan.diff["objects"][0]["items"]] == [("source.changed", "risky")]


def test_moving_ownership_needs_the_old_and_the_new_team(people: dict[str, User]) -> None:
    cr = create(
        people["author"],
        {
            "op": "set_metadata",
            "kind": "feature_view",
            "name": "department_features",
            "tags": {"team": "people-analytics", "domain": "org"},
        },
    )
    assert sorted(t["name"] for t in cr.required_teams) == ["hr-data-platform", "people-analytics"]


def test_a_pinned_contract_that_would_stop_matching_is_named(people: dict[str, User]) -> None:
    from catalog.contracts import contract_for_service

    model = register_model()
    model.contract_hash = contract_for_service(model.service).hash  # pinned to today's contract
    model.save()
    cr = create(
        people["author"], {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Int64"}
    )
    item = next(i for i in items(cr, "attrition_model_v1") if i["rule"] == "service.vector_consumed")
    assert "pinned contracts that stop matching: attrition-clf@3" in item["message"]
    assert item["severity"] == "breaking"
    # A metadata-only edit leaves the contract (and the pin) alone.
    safe = create(
        people["author"],
        {"op": "set_metadata", "kind": "feature_service", "name": "attrition_model_v1", "description": "v1"},
    )
    assert safe.severity == "safe"


NEW_ODFV = """
import pandas as pd
from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

from features import employee_features


@on_demand_feature_view(
    sources=[employee_features],
    schema=[Field(name="tenure_years", dtype=Float64)],
    mode="pandas",
    owner="hr-platform@example.com",
    tags={"team": "hr-data-platform"},
)
def tenure_years(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"tenure_years": inputs["tenure"] / 12})
"""


def test_a_new_transformation_is_risky_and_goes_to_the_owners_of_what_it_reads(people: dict[str, User]) -> None:
    """New code is never "safe", and the proposer's choice of owner does not decide who reviews it: the team
    owning the view it reads signs off too."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("features.py", (ROOT / "feature_repo" / "features.py").read_text())
        zf.writestr("tenure.py", NEW_ODFV)
    cr = change_request_create(
        actor=people["author"], project=PROJECT, title="tenure in years", upload=(archive.getvalue(), "repo.zip")
    )
    assert rules(cr, "tenure_years") == {"view.transformation_added": "risky"}
    assert cr.severity == "risky"
    assert [t["name"] for t in cr.required_teams] == ["hr-data-platform", "people-analytics"]
    (view,) = [o for o in cr.plan["objects"] if o["name"] == "tenure_years"]
    assert view["transformation"]["before"] == ""
    assert 'return pd.DataFrame({"tenure_years": inputs["tenure"] / 12})' in view["transformation"]["after"]
    assert "+def tenure_years(inputs: pd.DataFrame) -> pd.DataFrame:" in view["transformation"]["diff"]


def _break_proto(table: str, column: str, name_column: str, name: str) -> bytes:
    """Overwrite one object's stored proto in the SQL registry with bytes no proto decoder reads; returns the
    original."""
    import psycopg

    from tests import environment as env

    with psycopg.connect(f"{env.PG}/{env.REGISTRY_DB}", autocommit=True) as conn:
        row = conn.execute(f"SELECT {column} FROM {table} WHERE {name_column} = %s", (name,)).fetchone()
        assert row is not None
        conn.execute(f"UPDATE {table} SET {column} = %s WHERE {name_column} = %s", (b"\xff\xff\xff garbage", name))
    return bytes(row[0])


def test_an_unreadable_registry_object_blocks_only_plans_that_touch_it(people: dict[str, User]) -> None:
    """One undecodable proto in the registry: a change elsewhere plans as usual; a change that would write over
    it, or an upload of the whole repo, is refused naming the object and Feast's message; nothing is created."""
    _break_proto("feature_services", "feature_service_proto", "feature_service_name", "attrition_model_v1")
    elsewhere = create(
        people["author"], {"op": "set_metadata", "kind": "entity", "name": "employee_id", "description": "An employee."}
    )
    assert [o["name"] for o in elsewhere.plan["objects"]] == ["employee_id"]
    before = ChangeRequest.objects.count()
    with pytest.raises(RegistryCorrupt) as refused:
        create(
            people["author"],
            {"op": "set_metadata", "kind": "feature_service", "name": "attrition_model_v1", "description": "x"},
        )
    assert "attrition_model_v1" in str(refused.value) and "does not decode" in str(refused.value)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("features.py", (ROOT / "feature_repo" / "features.py").read_text())
    with pytest.raises(RegistryCorrupt) as refused:
        change_request_create(
            actor=people["author"], project=PROJECT, title="as is", upload=(archive.getvalue(), "repo.zip")
        )
    assert "attrition_model_v1" in str(refused.value) and "does not decode" in str(refused.value)
    # over the API: a 400 in the API's error shape, with the same words
    from tests.governance.test_api import client_for

    api = client_for(people["author"], "read", "propose")
    response = api.post(
        "/api/v1/change-requests/",
        {
            "project": PROJECT,
            "title": "t",
            "edits": [
                {"op": "set_metadata", "kind": "feature_service", "name": "attrition_model_v1", "description": "x"}
            ],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "does not decode" in response.json()["error"]["message"]
    assert ChangeRequest.objects.count() == before


def test_the_rules_table_covers_every_rule_and_is_the_readmes() -> None:
    """Every rule id the planner can report has a row (its severity comes from nowhere else), and the
    README's table is the generated one."""
    import re

    from catalog.management.commands.breaking_rules import readme_with_rules
    from catalog.services.rules import RULES

    planner = (ROOT / "catalog" / "services" / "planning.py").read_text()
    emitted = set(re.findall(r'_item\(\s*"([a-z_.]+)"', planner))
    assert len(emitted) > 30 and emitted <= set(RULES), emitted - set(RULES)
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_rules(readme), "run: python manage.py breaking_rules --write"
