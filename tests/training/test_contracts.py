"""The model contract: one definition of the ordered vector and its hash, served, verified and pinned."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from catalog import feast_gateway
from catalog.contracts import (
    contract_diff,
    contract_for_service,
    contract_for_spec,
    contract_for_vector,
    contract_hash,
)
from catalog.models import CatalogObject, ObjectVersion
from catalog.services.consumers import model_consumer_register
from catalog.services.sync import registry_sync
from tests.conftest import run_feast
from tests.training.conftest import PROJECT, V1_COLUMNS

V2_REFERENCES = [
    "employee_features:overall_satisfaction",
    "employee_features:tenure",
    "employee_features:overtime",
    "department_features:attrition_rate_90d",
    "department_features:avg_satisfaction",
    "employee_risk_signals:satisfaction_x_overtime",
    "employee_risk_signals:review_overdue",
]


def _service(name: str) -> CatalogObject:
    return CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name=name)


def _swap_tenure_and_salary_band(repo: feast_gateway.RepoRef) -> None:
    """Someone swaps two features of employee_features: attrition_model_v1's vector (its contract) changes."""
    features = repo.path / "features.py"
    text = features.read_text()
    tenure = '        Field(name="tenure", dtype=Float32, description="Years since hire."),\n'
    salary = '        Field(name="salary_band", dtype=Int64, description="Salary band, 1 (lowest) to 8."),\n'
    assert tenure + salary in text
    features.write_text(text.replace(tenure + salary, salary + tenure))
    run_feast(repo, "apply")
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"


def test_the_hash_is_a_fixed_function_of_the_ordered_entries() -> None:
    entries = [("employee_features", "", "tenure", "Float32"), ("employee_features", "", "overtime", "Int64")]
    # A golden value: changing the canonical form would silently break every pinned model.
    assert contract_hash(entries) == "f66e9251b2dd70c44889820611485f206943de8a8f1402b31470ccda9bfd9c68"
    assert contract_hash(entries) == contract_for_vector(entries).hash
    assert contract_hash(list(reversed(entries))) != contract_hash(entries)  # order is the contract
    assert contract_hash([("employee_features", "emp", "tenure", "Float32"), entries[1]]) != contract_hash(entries)
    assert contract_hash([("employee_features", "", "tenure", "Float64"), entries[1]]) != contract_hash(entries)


def test_contracts_resolve_aliases_and_sub_selections_from_the_registrys_declared_order(
    synced: feast_gateway.RepoRef,
) -> None:
    v1, v2 = contract_for_service(_service("attrition_model_v1")), contract_for_service(_service("attrition_model_v2"))
    assert v1.columns == V1_COLUMNS
    assert v2.references == V2_REFERENCES
    assert [e.dtype for e in v2.entries] == ["Float32", "Float32", "Int64", "Float32", "Float32", "Float64", "Int64"]
    # The contract of a stored version (its spec) is the same definition as the catalog's vector.
    for service, contract in (("attrition_model_v1", v1), ("attrition_model_v2", v2)):
        snapshot = ObjectVersion.objects.filter(object=_service(service)).latest("version").snapshot
        assert contract_for_spec(snapshot) == contract
    # Governance computes a proposed vector's hash with the same function.
    proposed = [(e.feature_view, e.view_alias, e.feature, e.dtype) for e in v2.entries]
    assert contract_for_vector(proposed).hash == v2.hash


def test_the_contract_api_serves_entries_history_and_pins(client: Client, proposer: User, synced: Any) -> None:
    service = _service("attrition_model_v2")
    contract = contract_for_service(service)
    model_consumer_register(
        actor=proposer, service=service, name="churn", version="1", owner="x", contract_hash=contract.hash
    )
    model_consumer_register(actor=proposer, service=service, name="old", version="1", owner="x", contract_hash="0" * 64)
    client.force_login(proposer)
    body = client.get(f"/api/v1/projects/{PROJECT}/feature-services/attrition_model_v2/contract/").json()
    assert body["hash"] == contract.hash and body["current"] is True and body["format"] == 1
    assert [e["reference"] for e in body["entries"]] == V2_REFERENCES
    assert [e["index"] for e in body["entries"]] == list(range(7))
    assert body["entries"][0]["column"] == "employee_features__overall_satisfaction"
    assert body["history"] == [
        {"version": 1, "recorded_at": body["history"][0]["recorded_at"], "change": "added", "hash": contract.hash}
    ]
    assert {p["name"]: p["matches"] for p in body["pinned_models"]} == {"churn": True, "old": False}
    assert client.get(f"/api/v1/projects/{PROJECT}/feature-services/nope/contract/").status_code == 404
    assert (
        client.get(f"/api/v1/projects/{PROJECT}/feature-services/attrition_model_v2/contract/?version=9").status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/projects/{PROJECT}/feature-services/attrition_model_v2/contract/?version=x").status_code
        == 400
    )
    page = client.get(f"/projects/{PROJECT}/feature-services/attrition_model_v2/").content.decode()
    assert 'id="contract"' in page and contract.hash in page
    assert 'data-model="churn@1"' in page and "mismatch" in page.split('data-model="old@1"')[1].split("</tr>")[0]


def test_verify_answers_match_or_mismatch_with_what_moved(
    client: Client, viewer: User, editable_demo_repo: feast_gateway.RepoRef, transactional_db: None, make_token: Any
) -> None:
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    before = contract_for_service(_service("attrition_model_v1"))
    url = f"/api/v1/projects/{PROJECT}/feature-services/attrition_model_v1/contract/verify/"
    token = make_token(viewer, ["read"])  # a read: a read-only token may verify
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    match = client.post(url, {"hash": before.hash}, content_type="application/json", **auth).json()
    assert match == {
        "project": PROJECT,
        "service": "attrition_model_v1",
        "result": "match",
        "hash": before.hash,
        "current_hash": before.hash,
        "version": 1,
        "known_version": 1,
    }
    unknown = client.post(url, {"hash": "a" * 64}, content_type="application/json", **auth).json()
    assert unknown["result"] == "mismatch" and unknown["known_version"] is None and unknown["diff"] == []
    assert [e["column"] for e in unknown["current"]] == V1_COLUMNS
    assert client.post(url, {"hash": "nope"}, content_type="application/json", **auth).status_code == 400

    _swap_tenure_and_salary_band(editable_demo_repo)
    after = contract_for_service(_service("attrition_model_v1"))
    assert after.hash != before.hash and after.columns[:2] == V1_COLUMNS[1::-1]
    stale = client.post(url, {"hash": before.hash}, content_type="application/json", **auth).json()
    assert stale["result"] == "mismatch" and stale["known_version"] == 1 and stale["version"] == 2
    assert stale["diff"] == [
        {"change": "moved", "reference": "employee_features:tenure", "from_index": 0, "to_index": 1},
        {"change": "moved", "reference": "employee_features:salary_band", "from_index": 1, "to_index": 0},
    ]
    # The history keeps both contracts; ?version= serves the old one.
    old = client.get(url.replace("verify/", "") + "?version=1", **auth).json()
    assert old["hash"] == before.hash and old["current"] is False
    assert [h["hash"] for h in old["history"]] == [after.hash, before.hash]
    assert contract_diff(before, after) == stale["diff"]


def test_a_model_page_shows_the_pinned_vector_the_current_one_and_what_changed(
    client: Client, proposer: User, viewer: User, editable_demo_repo: feast_gateway.RepoRef, transactional_db: None
) -> None:
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    service = _service("attrition_model_v1")
    pinned = contract_for_service(service)
    model = model_consumer_register(
        actor=proposer, service=service, name="churn", version="1", owner="x", contract_hash=pinned.hash
    )
    client.force_login(viewer)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert "The vector it reads" in page and "contract matches" in page and 'id="contract-mismatch"' not in page

    _swap_tenure_and_salary_band(editable_demo_repo)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert "The vector it reads" not in page
    warning = page.split('id="contract-mismatch"')[1].split("</section>")[0]
    assert "no longer matches" in warning and "version 1" in warning
    diff = warning.split('id="contract-diff"')[1].split("</ul>")[0]
    assert "employee_features:tenure</code> from index 0 to 1" in diff
    assert "employee_features:salary_band</code> from index 1 to 0" in diff

    def references(section: str) -> list[str]:
        table = page.split(f'id="{section}"')[1].split("</table>")[0]
        return [cell.split("</td>")[0].replace("<wbr>", "") for cell in table.split('<td class="mono">')[1:]]

    assert references("pinned-vector") == pinned.references
    assert references("current-vector")[:2] == ["employee_features:salary_band", "employee_features:tenure"]
    assert "now at index 1" in page.split('id="pinned-vector"')[1].split("</section>")[0]


def test_a_model_pinning_an_unknown_contract_is_flagged_with_the_current_vector(
    client: Client, proposer: User, synced: Any
) -> None:
    service = _service("attrition_model_v1")
    model = model_consumer_register(
        actor=proposer, service=service, name="mystery", version="1", owner="x", contract_hash="b" * 64
    )
    unpinned = model_consumer_register(actor=proposer, service=service, name="loose", version="1", owner="x")
    client.force_login(proposer)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="contract-mismatch"' in page and "cannot be listed" in page
    assert "no recorded version of attrition_model_v1" in page.split('id="pinned-vector"')[1]
    current = page.split('id="current-vector"')[1].replace("<wbr>", "")
    assert all(ref in current for ref in contract_for_service(service).references)
    loose = client.get(f"/models/{unpinned.pk}/").content.decode()
    assert "The vector it reads" in loose and "not pinned" in loose and 'id="contract-mismatch"' not in loose
