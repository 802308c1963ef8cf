"""The change-request API: JSON edits and multipart uploads, actions with scoped tokens, apply on a real worker,
teams and project governance settings, and bad input that changes nothing."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from catalog import feast_gateway
from catalog.models import AuditEvent, ChangeRequest, Project, Team
from catalog.services.planning import Proposal
from catalog.services.tokens import api_token_create
from tests.governance.conftest import PROJECT, PROPOSE_UPLOAD, wait_for, wait_for_catalog
from tests.governance.hostile_cases import (
    ESCAPE_CASES,
    HOSTILE_CASES,
    EscapeTargets,
    escape_upload,
    leftovers,
    udf_swap_upload,
)

RETYPE = {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Int64"}
ROOT = Path(__file__).resolve().parents[2]


def client_for(user: User, *scopes: str) -> APIClient:
    _, raw = api_token_create(actor=user, user=user, name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def demo_archive(edit: str | None = None) -> bytes:
    """The demo repo's definitions as a zip, optionally with one line changed."""
    text = (ROOT / "feature_repo" / "features.py").read_text()
    if edit:
        old, new = edit.split("=>")
        assert old in text
        text = text.replace(old, new)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("repo/features.py", text)
    return buffer.getvalue()


@pytest.mark.django_db
def test_propose_with_json_edits_and_read_the_plan(people: dict[str, User]) -> None:
    api = client_for(people["author"], "read", "propose")
    response = api.post(
        "/api/v1/change-requests/",
        {"project": PROJECT, "title": "tenure as Int64", "edits": [RETYPE], "submit": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "submitted" and body["severity"] == "breaking"
    assert body["approvals"]["required_approvals"] == 2
    assert body["approvals"]["missing"][0].startswith("2 more approval")
    view = next(o for o in body["plan"]["objects"] if o["name"] == "employee_features")
    assert view["items"][0]["rule"] == "view.dtype_changed"
    assert {o["name"] for o in body["objects"]} == {"employee_features", "attrition_model_v1", "attrition_model_v2"}
    listed = api.get("/api/v1/change-requests/?status=open").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]
    assert api.get("/api/v1/change-requests/?bogus=1").status_code == 400


@pytest.mark.django_db
def test_tokens_need_the_right_scope_and_role(people: dict[str, User]) -> None:
    author = client_for(people["author"], "read", "propose")
    cr_id = author.post(
        "/api/v1/change-requests/", {"project": PROJECT, "title": "t", "edits": [RETYPE], "submit": True}, format="json"
    ).json()["id"]
    # The author's token cannot approve (no scope), and even with the scope the four-eyes rule holds.
    assert author.post(f"/api/v1/change-requests/{cr_id}/approve/", {}, format="json").status_code == 403
    own = client_for(people["author"], "read", "approve")
    response = own.post(f"/api/v1/change-requests/{cr_id}/approve/", {}, format="json")
    assert response.status_code == 403
    assert "own" in response.json()["error"]["message"]
    reader = client_for(people["approver1"], "read")
    assert reader.post(f"/api/v1/change-requests/{cr_id}/approve/", {}, format="json").status_code == 403
    viewer = client_for(people["viewer"], "read", "propose")
    assert (
        viewer.post(
            "/api/v1/change-requests/", {"project": PROJECT, "title": "t", "edits": [RETYPE]}, format="json"
        ).status_code
        == 403
    )
    assert APIClient().get(f"/api/v1/change-requests/{cr_id}/").status_code == 401


@pytest.mark.django_db
def test_reject_needs_a_comment_and_stale_revisions_are_refused(people: dict[str, User]) -> None:
    author = client_for(people["author"], "read", "propose")
    cr_id = author.post(
        "/api/v1/change-requests/", {"project": PROJECT, "title": "t", "edits": [RETYPE], "submit": True}, format="json"
    ).json()["id"]
    reviewer = client_for(people["approver1"], "read", "approve")
    response = reviewer.post(f"/api/v1/change-requests/{cr_id}/reject/", {"revision": 1}, format="json")
    assert response.status_code == 400 and "comment" in response.json()["error"]["message"]
    # The author revises: revision 2. An approval for revision 1 is refused.
    revised = author.post(
        f"/api/v1/change-requests/{cr_id}/revise/", {"edits": [{**RETYPE, "dtype": "Float64"}]}, format="json"
    )
    assert revised.status_code == 200 and revised.json()["revision"] == 2
    stale = reviewer.post(f"/api/v1/change-requests/{cr_id}/approve/", {"revision": 1}, format="json")
    assert stale.status_code == 409
    ok = reviewer.post(f"/api/v1/change-requests/{cr_id}/approve/", {"revision": 2, "comment": "lgtm"}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    comment = author.post(f"/api/v1/change-requests/{cr_id}/comment/", {"body": "thanks"}, format="json")
    assert comment.status_code == 201 and comment.json()["comments"][0]["body"] == "thanks"


def test_upload_plan_approve_apply_over_the_api(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    author = client_for(people["author"], "read", "propose")
    archive = demo_archive('Field(name="headcount", dtype=Int64=>Field(name="headcount", dtype=Float64')
    response = author.post(
        PROPOSE_UPLOAD,
        {
            "project": PROJECT,
            "title": "headcount fits in Int32",
            "archive": io.BytesIO(archive),
            "mode": "partial",
            "submit": "true",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    # Only what differs from the registry is proposed: the view (and nothing else).
    assert [(o["name"], o["action"]) for o in body["objects"]] == [("department_features", "upsert")]
    item = body["plan"]["objects"][0]["items"][0]
    assert (item["rule"], item["severity"]) == ("view.dtype_changed", "breaking")
    for reviewer in ("hr_approver", "outside_approver"):
        api = client_for(people[reviewer], "read", "approve")
        approve = {"revision": body["revision"]}
        assert api.post(f"/api/v1/change-requests/{body['id']}/approve/", approve, format="json").status_code == 200
    operator = client_for(people["operator"], "read", "operate")
    assert (
        client_for(people["approver1"], "read", "operate")
        .post(f"/api/v1/change-requests/{body['id']}/apply/")
        .status_code
        == 403
    )
    started = operator.post(f"/api/v1/change-requests/{body['id']}/apply/")
    assert started.status_code == 202, started.json()
    cr = wait_for(ChangeRequest.objects.get(pk=body["id"]), "applied", "failed", "stale")
    assert cr.status == "applied", cr.apply_result
    detail = operator.get(f"/api/v1/change-requests/{body['id']}/").json()
    assert detail["apply_job"]["id"] == started.json()["id"]
    assert detail["apply_result"]["applied"] == ["feature_view:department_features"]
    again = operator.post(f"/api/v1/change-requests/{body['id']}/apply/")
    assert again.status_code == 409


@pytest.mark.django_db
def test_an_upload_that_changes_nothing_is_refused(people: dict[str, User], celery_worker: Any) -> None:
    author = client_for(people["author"], "read", "propose")
    response = author.post(
        PROPOSE_UPLOAD,
        {"project": PROJECT, "title": "same", "archive": io.BytesIO(demo_archive()), "mode": "full"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "nothing would change" in response.json()["error"]["message"]
    assert not ChangeRequest.objects.exists()


@pytest.mark.django_db
def test_a_whole_project_upload_deletes_what_it_omits_explicitly(people: dict[str, User], celery_worker: Any) -> None:
    text = (ROOT / "feature_repo" / "features.py").read_text()
    start = text.index("attrition_model_v2 = FeatureService(")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("features.py", text[:start])
    author = client_for(people["author"], "read", "propose")
    partial = author.post(
        PROPOSE_UPLOAD,
        {"project": PROJECT, "title": "drop v2", "archive": io.BytesIO(archive.getvalue()), "mode": "partial"},
        format="multipart",
    )
    assert partial.status_code == 400  # a partial upload never deletes: nothing changes
    full = author.post(
        PROPOSE_UPLOAD,
        {"project": PROJECT, "title": "drop v2", "archive": io.BytesIO(archive.getvalue()), "mode": "full"},
        format="multipart",
    )
    assert full.status_code == 201, full.json()
    objects = full.json()["plan"]["objects"]
    assert [(o["name"], o["action"], o["severity"]) for o in objects] == [("attrition_model_v2", "removed", "risky")]


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_before_it_is_read(people: dict[str, User], settings: Any) -> None:
    settings.GOVERNANCE_UPLOAD_MAX_BYTES = 10_000
    author = client_for(people["author"], "read", "propose")
    response = author.post(
        PROPOSE_UPLOAD,
        {"project": PROJECT, "title": "big", "archive": io.BytesIO(b"PK" + b"\0" * 200_000)},
        format="multipart",
    )
    assert response.status_code == 400
    assert "at most 10,000 bytes" in response.json()["error"]["message"]
    assert not ChangeRequest.objects.exists()


@pytest.mark.django_db
def test_teams_and_project_governance_are_admin_managed(people: dict[str, User]) -> None:
    admin = client_for(people["admin"], "read", "operate")
    approver = client_for(people["approver1"], "read", "operate")
    payload = {"name": "ml-platform", "members": ["amy", "abe"], "aliases": ["mlp@example.com"]}
    assert approver.post("/api/v1/teams/", payload, format="json").status_code == 403
    created = admin.post("/api/v1/teams/", payload, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["members"] == ["abe", "amy"]  # sorted by username, whatever order they came in
    changed = admin.patch("/api/v1/teams/ml-platform/", {"aliases": ["mlp@example.com", "mlp"]}, format="json")
    assert changed.json()["aliases"] == ["mlp", "mlp@example.com"]
    taken = admin.patch("/api/v1/teams/people-analytics/", {"aliases": ["mlp"]}, format="json")
    assert taken.status_code == 400
    assert set(Team.objects.get(name="ml-platform").members.values_list("username", flat=True)) == {"amy", "abe"}
    url = f"/api/v1/projects/{PROJECT}/governance/"
    assert approver.patch(url, {"compatibility": "NONE"}, format="json").status_code == 403
    assert admin.patch(url, {"compatibility": "MAYBE"}, format="json").status_code == 400
    ok = admin.patch(url, {"compatibility": "FULL", "auto_apply": True, "breaking_approvals": 3}, format="json")
    assert ok.json() == {"compatibility": "FULL", "auto_apply": True, "breaking_approvals": 3}
    assert Project.objects.get(name=PROJECT).compatibility == "FULL"
    assert AuditEvent.objects.filter(action="project.governance_changed").exists()
    assert AuditEvent.objects.filter(action="team.created").exists()


@pytest.mark.django_db
def test_the_audit_log_cannot_be_edited_or_deleted_over_the_api(people: dict[str, User]) -> None:
    admin = client_for(people["admin"], "read", "operate", "propose", "approve")
    admin.post("/api/v1/change-requests/", {"project": PROJECT, "title": "t", "edits": [RETYPE]}, format="json")
    event = AuditEvent.objects.filter(action="change_request.created").get()
    for method in ("put", "patch", "delete"):
        assert getattr(admin, method)("/api/v1/audit/", {}, format="json").status_code == 405
        assert getattr(admin, method)(f"/api/v1/audit/{event.pk}/", {}, format="json").status_code in (404, 405)
    listed = admin.get("/api/v1/audit/?action=change_request.created").json()
    assert listed["results"][0]["action"] == "change_request.created"
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()


# --- The hostile-input suite, through the API: a clear error, no request stored, the registry untouched ------


# Every archive-level case (instant), plus the code-level cases that matter most end to end (each spawns the
# sandbox: ~4 s). tests/governance/test_sandbox.py runs all of them against the parser itself.
API_CASES = [c for c in HOSTILE_CASES if c.stage != "parse"] + [
    c
    for c in HOSTILE_CASES
    if c.id
    in {
        "syntax_error",
        "missing_module",
        "reads_secret_from_environ",
        "unknown_dtype",
        "duplicate_feature_views",
        "nul_in_a_description",
        "infinite_loop",
    }
]


@pytest.mark.django_db
def test_hostile_upload_is_refused_and_changes_nothing(
    people: dict[str, User],
    synced: feast_gateway.RepoRef,
    settings: Any,
    tmp_path: Path,
    subtests: pytest.Subtests,
    celery_worker: Any,
) -> None:
    """Every hostile case through the API, one subtest each, on one synced registry (each refusal must leave
    it, and the change requests, exactly as they were)."""
    before = feast_gateway.registry_fingerprint(synced)
    author = client_for(people["author"], "read", "propose")
    defaults = {key: getattr(settings, key) for case in API_CASES for key in case.settings}
    for case in API_CASES:
        with subtests.test(msg=case.id):
            for key, value in {**defaults, **case.settings}.items():
                setattr(settings, key, value)
            (tmp_path / case.id).mkdir()
            data, filename = case.build(tmp_path / case.id)
            upload = io.BytesIO(data)
            upload.name = filename
            response = author.post(
                PROPOSE_UPLOAD,
                {"project": PROJECT, "title": f"hostile {case.id}", "archive": upload, "submit": "true"},
                format="multipart",
            )
            assert response.status_code == 400, response.content[:500]
            error = response.json()["error"]
            # The API refuses an oversized body from its Content-Length, before reading it: its own message.
            expected = {"larger_than_limit": "archives may be at most 5,242,880 bytes"}.get(case.id, case.message)
            assert expected in error["message"]
            assert "Traceback" not in error["message"] and "/work/" not in error["message"]
            assert not ChangeRequest.objects.exists()
            assert feast_gateway.registry_fingerprint(synced) == before


@pytest.mark.django_db
def test_the_sandbox_escape_shows_no_secret_anywhere(
    people: dict[str, User], escape_targets: EscapeTargets, caplog: pytest.LogCaptureFixture, celery_worker: Any
) -> None:
    """The report's request, end to end: the escape's record reaches the plan (it declares an entity), and
    neither the response, the stored plan, the request's pages, the audit log nor the logs hold the secret."""
    caplog.set_level("INFO")
    secret = escape_targets.secret.read_text()
    case = next(c for c in ESCAPE_CASES if c.id == "realpath_code_swap")
    data, filename = escape_upload(case, escape_targets)
    upload = io.BytesIO(data)
    upload.name = filename
    author = client_for(people["author"], "read", "propose")
    response = author.post(
        PROPOSE_UPLOAD,
        {"project": PROJECT, "title": "escape", "archive": upload, "submit": "true"},
        format="multipart",
    )
    assert response.status_code == 201, response.content[:500]
    cr = ChangeRequest.objects.get()
    page = Client()
    page.force_login(people["approver1"])
    shown = {
        "response": response.content.decode(),
        "api detail": author.get(f"/api/v1/change-requests/{cr.pk}/").content.decode(),
        "plan": json.dumps(cr.plan),
        "page": page.get(reverse("catalog:change_request_detail", args=[cr.pk])).content.decode(),
        "audit": json.dumps(list(AuditEvent.objects.values("before", "after", "object_repr")), default=str),
        "logs": caplog.text,
    }
    assert "escape_report" in shown["plan"]  # the attempts ran and their record was proposed
    assert [name for name, text in shown.items() if secret in text] == []
    assert leftovers(escape_targets) == []


def _upload(client: APIClient, data: bytes, filename: str, title: str) -> Any:
    upload = io.BytesIO(data)
    upload.name = filename
    return client.post(
        PROPOSE_UPLOAD,
        {"project": PROJECT, "title": title, "archive": upload, "submit": "true"},
        format="multipart",
    )


def test_a_swapped_pickled_udf_is_refused_or_stored_as_its_reviewed_source(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any, tmp_path: Path
) -> None:
    """The report's second attack, end to end: a source that does not run alone is refused at plan time; one
    that does is classified risky, routed to the view's team, shown in full with its diff, and applied by the
    real worker as that text alone: the payload pickled in its place never runs."""
    marker = tmp_path / "payload-ran"
    author = client_for(people["author"], "read", "propose")
    refused = _upload(author, *udf_swap_upload(marker, text_runs_alone=False), "scaled risk signals")
    assert refused.status_code == 400, refused.content[:500]
    assert "does not run on its own (NameError: name 'SCALE' is not defined)" in refused.json()["error"]["message"]
    assert not ChangeRequest.objects.exists()

    response = _upload(author, *udf_swap_upload(marker, text_runs_alone=True), "review overdue after 18 months")
    assert response.status_code == 201, response.content[:500]
    cr = ChangeRequest.objects.get()
    (view,) = [o for o in cr.plan["objects"] if o["name"] == "employee_risk_signals"]
    assert view["severity"] == "risky"
    assert ("view.transformation", "risky") in {(i["rule"], i["severity"]) for i in view["items"]}
    assert "people-analytics" in {t["name"] for t in cr.required_teams}
    diff = view["transformation"]["diff"]
    assert '-    out["review_overdue"] = (inputs["months_since_last_review"] > 12)' in diff
    assert '+    out["review_overdue"] = (inputs["months_since_last_review"] > 18)' in diff
    stored = Proposal.from_json(cr.proposal).upserts[("feature_view", "employee_risk_signals")]
    message = stored.message()
    udfs = [message.spec.feature_transformation.user_defined_function, message.spec.user_defined_function]
    assert all(u.body == b"" for u in udfs) and "> 18" in udfs[0].body_text
    page = Client()
    page.force_login(people["approver1"])
    html = page.get(reverse("catalog:change_request_detail", args=[cr.pk])).content.decode()
    assert "Transformation source" in html
    assert "def employee_risk_signals(inputs: pd.DataFrame) -&gt; pd.DataFrame:" in html  # the full source
    assert "+    out[&quot;review_overdue&quot;] = (inputs[&quot;months_since_last_review&quot;] &gt; 18)" in html

    approver = client_for(people["approver1"], "read", "approve")
    body = {"revision": cr.revision}
    assert approver.post(f"/api/v1/change-requests/{cr.pk}/approve/", body, format="json").status_code == 200
    operator = client_for(people["operator"], "read", "operate")
    assert operator.post(f"/api/v1/change-requests/{cr.pk}/apply/").status_code == 202
    cr = wait_for(cr, "applied", "failed", "stale")
    assert cr.status == "applied", cr.apply_result
    wait_for_catalog(cr)
    live = feast_gateway.project_protos(synced, PROJECT, [("feature_view", "employee_risk_signals")])
    live_udf = live[("feature_view", "employee_risk_signals")].message().spec.feature_transformation
    # Feast's apply rebuilt the function from the reviewed text (nothing to unpickle) and pickled that anew.
    assert "> 18" in live_udf.user_defined_function.body_text
    assert b"payload ran" not in live_udf.user_defined_function.body
    obj_page = page.get(f"/projects/{PROJECT}/feature-views/employee_risk_signals/").content.decode()
    assert "Transformation" in obj_page and "&gt; 18" in obj_page
    assert not marker.exists()


def test_the_suite_covers_the_issues_list() -> None:
    ids = {c.id for c in HOSTILE_CASES}
    assert len(HOSTILE_CASES) >= 20
    for required in (
        "syntax_error",
        "missing_module",
        "infinite_loop",
        "reads_secret_from_environ",
        "zip_slip",
        "symlink_zip",
        "zip_bomb_1gb",
        "100k_members",
        "unknown_dtype",
        "duplicate_feature_views",
    ):
        assert required in ids


@pytest.mark.django_db
def test_an_approval_names_the_revision_it_approves_and_bodies_are_objects(people: dict[str, User]) -> None:
    """Approving "whatever is latest" is refused: the approver says which revision they read; a JSON body that
    is not an object is a 400, not a 500."""
    author = client_for(people["author"], "read", "propose")
    created = author.post(
        "/api/v1/change-requests/", {"project": PROJECT, "title": "t", "edits": [RETYPE], "submit": True}, format="json"
    ).json()
    approver = client_for(people["hr_approver"], "read", "approve")
    url = f"/api/v1/change-requests/{created['id']}"
    missing = approver.post(f"{url}/approve/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["details"] == {"revision": ["required"]}
    assert ChangeRequest.objects.get(pk=created["id"]).approvals.count() == 0
    for action in ("approve", "withdraw", "submit", "comment"):
        for body in ("true", "[1, 2]"):
            response = author.post(f"{url}/{action}/", body, content_type="application/json")
            assert response.status_code in (400, 403), (action, body, response.status_code)
            if response.status_code == 400:
                assert "JSON object" in response.json()["error"]["message"]
    ok = approver.post(f"{url}/approve/", {"revision": created["revision"]}, format="json")
    assert ok.status_code == 200, ok.content
