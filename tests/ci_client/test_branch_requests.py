"""Change requests idempotent per branch: the external reference (repository, branch, commit) on the API, one
live request per branch (a constraint), a re-run revises it through the one revise service, identical plan
input adds no revision, the list filters by the reference, and the schema documents it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from catalog.models import AuditEvent, ChangeRequest
from catalog.services.change_requests import (
    ExternalRef,
    change_request_approve,
    change_request_propose_for_ref,
    change_request_reject,
    change_request_withdraw,
)
from catalog.services.tokens import api_token_create
from tests.ci_client.conftest import PROJECT

pytestmark = pytest.mark.django_db

RETYPE = {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Int64"}
DESCRIBE = {"op": "set_metadata", "kind": "feature_view", "name": "employee_features", "description": "Employees."}
REF = {"external_repo": "acme/features", "external_branch": "retype-tenure"}


def client_for(user: User, *scopes: str) -> APIClient:
    _, raw = api_token_create(actor=user, user=user, name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def propose(api: APIClient, *edits: dict[str, Any], sha: str = "", **extra: Any) -> Any:
    body = {"project": PROJECT, "title": "CI", "edits": list(edits), "submit": True, **REF, **extra}
    if sha:
        body["external_sha"] = sha
    return api.post("/api/v1/change-requests/", body, format="json")


def test_a_branch_keeps_one_request_revised_by_each_run(people: dict[str, User]) -> None:
    api = client_for(people["author"], "read", "propose")
    created = propose(api, RETYPE, sha="1111111")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["outcome"], body["revision"]) == ("created", 1)
    assert (body["external_repo"], body["external_branch"], body["external_sha"]) == (
        "acme/features",
        "retype-tenure",
        "1111111",
    )
    change_request_approve(cr=ChangeRequest.objects.get(), actor=people["approver1"], revision=1)

    # The same edits from a later commit: no new revision, the approval stands, the commit is recorded.
    same = propose(api, RETYPE, sha="2222222")
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    assert (same.json()["revision"], same.json()["external_sha"]) == (1, "2222222")
    assert len(same.json()["approvals"]["approvals"]) == 1
    assert AuditEvent.objects.filter(action="change_request.commit_recorded").count() == 1

    # Different edits: a new revision of the same request (the revise service), approvals of revision 1 superseded.
    revised = propose(api, RETYPE, DESCRIBE, sha="3333333")
    assert revised.status_code == 200, revised.json()
    body = revised.json()
    assert (body["id"], body["outcome"], body["revision"], body["status"]) == (
        created.json()["id"],
        "revised",
        2,
        "submitted",
    )
    assert body["approvals"]["approvals"] == []
    assert [(a["user"], a["revision"]) for a in body["approvals"]["superseded"]] == [("amy", 1)]
    assert ChangeRequest.objects.count() == 1
    assert AuditEvent.objects.filter(action="change_request.revised").count() == 1

    # Another branch of the same repository opens its own request.
    other = propose(api, DESCRIBE, external_branch="describe")
    assert other.status_code == 201 and other.json()["id"] != body["id"]

    # The list filters by the reference.
    listed = api.get("/api/v1/change-requests/", {"external_repo": "acme/features", "external_branch": "retype-tenure"})
    assert [c["id"] for c in listed.json()["results"]] == [body["id"]]
    assert api.get("/api/v1/change-requests/", {"external_branch": "nope"}).json()["results"] == []


def test_only_the_author_or_an_admin_revises_a_branchs_request(people: dict[str, User]) -> None:
    assert propose(client_for(people["author"], "read", "propose"), RETYPE).status_code == 201
    other = make_proposer()
    refused = propose(client_for(other, "read", "propose"), DESCRIBE)
    assert refused.status_code == 403
    assert "was opened by pat; only its author or an admin can revise it" in refused.json()["error"]["message"]
    assert ChangeRequest.objects.get().revision == 1


def make_proposer() -> User:
    from tests.governance.conftest import make_user

    return make_user("percy", "proposer")


def test_an_applied_or_withdrawn_request_frees_the_branch_and_a_rejection_is_kept(people: dict[str, User]) -> None:
    author = people["author"]
    ref = ExternalRef("acme/features", "retype-tenure", "aaaaaaa")
    first, outcome = change_request_propose_for_ref(
        actor=author, project=PROJECT, ref=ref, title="t", edits=[RETYPE], submit=True
    )
    assert outcome == "created"
    change_request_reject(cr=first, actor=people["approver1"], comment="not this way", revision=1)
    # The same content again: still the rejected request (the reviewer said no to exactly this).
    again, outcome = change_request_propose_for_ref(actor=author, project=PROJECT, ref=ref, title="t", edits=[RETYPE])
    assert (again.pk, outcome, again.status) == (first.pk, "unchanged", "rejected")
    # New content: a new revision, back for review.
    revised, outcome = change_request_propose_for_ref(
        actor=author, project=PROJECT, ref=ref, title="t", edits=[RETYPE, DESCRIBE]
    )
    assert (revised.pk, outcome, revised.status, revised.revision) == (first.pk, "revised", "submitted", 2)
    change_request_withdraw(cr=revised, actor=author)
    fresh, outcome = change_request_propose_for_ref(actor=author, project=PROJECT, ref=ref, title="t", edits=[RETYPE])
    assert outcome == "created" and fresh.pk != first.pk


def test_the_database_holds_one_live_request_per_branch(people: dict[str, User]) -> None:
    ref = ExternalRef("acme/features", "race")
    cr, _ = change_request_propose_for_ref(actor=people["author"], project=PROJECT, ref=ref, title="t", edits=[RETYPE])
    twin = ChangeRequest.objects.get(pk=cr.pk)
    twin.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()  # what a second run racing the first would insert
    ChangeRequest.objects.filter(pk=cr.pk).update(status="applied")
    twin.pk = None
    twin.save()  # an applied request no longer holds the branch
    assert set(ChangeRequest.BRANCH_LIVE) == {
        "draft",
        "submitted",
        "approved",
        "stale",
        "rejected",
        "failed",
        "applying",
    }  # the constraint's condition spells these out


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"external_branch": ""}, "external_branch"),
        ({"external_repo": "has space"}, "external_repo"),
        ({"external_sha": "not-hex"}, "external_sha"),
    ],
)
def test_a_malformed_reference_is_refused_and_stores_nothing(
    people: dict[str, User], extra: dict[str, str], field: str
) -> None:
    api = client_for(people["author"], "read", "propose")
    body = {"project": PROJECT, "title": "CI", "edits": [RETYPE], **REF, **extra}
    response = api.post("/api/v1/change-requests/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not ChangeRequest.objects.exists()


def test_the_schema_documents_the_reference_and_the_new_endpoints(people: dict[str, User]) -> None:
    schema = client_for(people["viewer"], "read").get("/api/v1/schema/", {"format": "json"}).json()
    create = schema["components"]["schemas"]["ChangeRequestCreateRequest"]["properties"]
    assert {"external_repo", "external_branch", "external_sha"} <= set(create)
    assert "idempotent" in create["external_repo"]["description"] or "revised" in create["external_repo"]["description"]
    proposed = schema["components"]["schemas"]["ChangeRequestProposed"]["properties"]
    assert {"outcome", "external_repo", "external_branch", "external_sha", "archive_sha256"} <= set(proposed)
    params = {p["name"] for p in schema["paths"]["/api/v1/change-requests/"]["get"]["parameters"]}
    assert {"external_repo", "external_branch", "archive_sha256"} <= params
    assert "/api/v1/service-accounts/" in schema["paths"]
    assert "/api/v1/service-accounts/{name}/tokens/{id}/" in schema["paths"]


def test_the_client_mirrors_the_servers_rules() -> None:
    """The client cannot import the portal, so what it copies of the server's rules is held equal here."""
    from catalog.feast_gateway import upload_archive
    from client import feature_portal

    assert feature_portal.SENT_SUFFIXES == upload_archive.ALLOWED_SUFFIXES
    assert feature_portal.SENT_NAMES == upload_archive.ALLOWED_NAMES
    assert feature_portal.SKIPPED_DIRS == upload_archive.IGNORED_DIRS
    assert set(feature_portal.LIVE) == set(ChangeRequest.BRANCH_LIVE)
