"""The change-request workflow end to end: approvals, the four-eyes rule, apply on a real worker, stale plans,
concurrent approvals, failures (real Feast SQL registry, PostgreSQL, Redis, Celery)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from catalog import feast_gateway
from catalog.exceptions import DuplicateObject, InvalidInput, NotPermitted
from catalog.models import Approval, AuditEvent, CatalogObject, ChangeRequest, ObjectVersion, Project
from catalog.services.change_requests import (
    TransitionConflict,
    approval_status,
    change_request_approve,
    change_request_create,
    change_request_override,
    change_request_reject,
    change_request_revise,
    change_request_submit,
    change_request_withdraw,
)
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from jobs.services.apply import change_request_apply_start
from tests import environment as env
from tests.conftest import wait_for_terminal
from tests.governance.conftest import PROJECT, make_user, register_model, wait_for, wait_for_catalog

RETYPE = {"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Int64"}
DESCRIBE = {"op": "set_metadata", "kind": "feature_view", "name": "department_features", "description": "New words."}


def submitted(author: User, *edits: dict[str, Any]) -> ChangeRequest:
    return change_request_create(actor=author, project=PROJECT, title="retype", edits=list(edits), submit=True)


def view_dtype(repo: feast_gateway.RepoRef, view: str, field: str) -> str:
    obj = feast_gateway.project_protos(repo, PROJECT, [("feature_view", view)])[("feature_view", view)]
    info = feast_gateway.object_info(obj, PROJECT)
    return next(f.dtype for f in info.features if f.name == field)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_the_author_can_never_approve_their_own_request(people: dict[str, User]) -> None:
    author = make_user("boss", "admin", teams=("people-analytics",))
    cr = submitted(author, DESCRIBE)
    with pytest.raises(NotPermitted, match="four-eyes"):
        change_request_approve(cr=cr, actor=author)
    with pytest.raises(NotPermitted, match="own"):
        change_request_override(cr=cr, actor=author, team="hr-data-platform", reason="I am the admin after all")
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_breaking_needs_two_approvals_including_the_owning_team(people: dict[str, User]) -> None:
    cr = submitted(people["author"], RETYPE)
    assert cr.severity == "breaking" and cr.required_approvals == 2
    change_request_approve(cr=cr, actor=people["outside_approver"], comment="fine by me")
    change_request_approve(cr=cr, actor=people["hr_approver"])
    cr.refresh_from_db()
    # Two approvals, but people-analytics (owner of employee_features) has not signed off.
    assert cr.status == "submitted"
    assert approval_status(cr)["missing"] == ["an approval from a member of people-analytics"]
    with pytest.raises(DuplicateObject):
        change_request_approve(cr=cr, actor=people["outside_approver"])
    with pytest.raises(TransitionConflict, match="only approved"):
        change_request_apply_start(cr=cr, actor=people["operator"])
    change_request_approve(cr=cr, actor=people["approver1"])
    cr.refresh_from_db()
    assert cr.status == "approved"
    with pytest.raises(NotPermitted):
        change_request_approve(cr=cr, actor=people["viewer"])


@pytest.mark.django_db
def test_an_object_without_a_known_team_can_be_approved_by_any_approver(people: dict[str, User]) -> None:
    for obj in CatalogObject.objects.filter(project__name=PROJECT):
        obj.tags.pop("team", None)
        obj.save()
    # The live registry still carries team tags: plan a change on an object whose owner maps to no team.
    cr = submitted(
        people["author"],
        {"op": "set_metadata", "kind": "entity", "name": "department_id", "owner": "nobody@example.com", "tags": {}},
    )
    assert [t["name"] for t in cr.required_teams] == ["hr-data-platform"]  # the old owner still signs off
    change_request_override(cr=cr, actor=people["admin"], team="hr-data-platform", reason="team disbanded last week")
    cr.refresh_from_db()
    assert cr.status == "submitted"  # the override covers the team, not the approval count
    change_request_approve(cr=cr, actor=people["outside_approver"])
    cr.refresh_from_db()
    assert cr.status == "approved"
    status = approval_status(cr)
    assert status["teams"][0]["override"]["reason"] == "team disbanded last week"
    assert AuditEvent.objects.filter(action="change_request.team_overridden").exists()


@pytest.mark.django_db
def test_overrides_need_an_admin_and_a_reason(people: dict[str, User]) -> None:
    cr = submitted(people["author"], DESCRIBE)
    with pytest.raises(NotPermitted):
        change_request_override(cr=cr, actor=people["approver1"], team="hr-data-platform", reason="because I say so")
    with pytest.raises(InvalidInput, match="reason"):
        change_request_override(cr=cr, actor=people["admin"], team="hr-data-platform", reason="ok")
    with pytest.raises(InvalidInput, match="not a team"):
        change_request_override(cr=cr, actor=people["admin"], team="finance", reason="finance is not involved")


@pytest.mark.django_db
def test_rejection_needs_a_comment_and_revising_resets_approvals(people: dict[str, User]) -> None:
    cr = submitted(people["author"], RETYPE)
    change_request_approve(cr=cr, actor=people["approver1"])
    with pytest.raises(InvalidInput, match="comment"):
        change_request_reject(cr=cr, actor=people["approver2"], comment="  ")
    change_request_reject(cr=cr, actor=people["approver2"], comment="Int64 truncates fractional years")
    cr.refresh_from_db()
    assert cr.status == "rejected"
    with pytest.raises(TransitionConflict):
        change_request_approve(cr=cr, actor=people["outside_approver"])
    revised = change_request_revise(cr=cr, actor=people["author"], edits=[{**RETYPE, "dtype": "Float64"}])
    assert revised.status == "submitted" and revised.revision == 2
    assert revised.severity == "risky"  # widening now
    status = approval_status(revised)
    assert status["approvals"] == [] and status["required_approvals"] == 1
    with pytest.raises(TransitionConflict, match="re-planned"):
        change_request_approve(cr=revised, actor=people["approver1"], revision=1)
    with pytest.raises(NotPermitted):
        change_request_revise(cr=revised, actor=people["approver1"], edits=[RETYPE])


@pytest.mark.django_db
def test_drafts_need_submitting_and_withdrawn_requests_are_closed(people: dict[str, User]) -> None:
    cr = change_request_create(actor=people["author"], project=PROJECT, title="draft", edits=[DESCRIBE])
    assert cr.status == "draft"
    with pytest.raises(TransitionConflict):
        change_request_approve(cr=cr, actor=people["hr_approver"])
    change_request_submit(cr=cr, actor=people["author"])
    change_request_withdraw(cr=cr, actor=people["author"])
    assert ChangeRequest.objects.get(pk=cr.pk).status == "withdrawn"
    with pytest.raises(TransitionConflict):
        change_request_submit(cr=cr, actor=people["author"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_count_once_each_and_approve_once(people: dict[str, User]) -> None:
    cr = submitted(people["author"], RETYPE)
    barrier = threading.Barrier(3)
    errors: list[Exception] = []

    def approve(user: User) -> None:
        try:
            barrier.wait()
            change_request_approve(cr=ChangeRequest.objects.get(pk=cr.pk), actor=user)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    # approver1 twice (a double click) and approver2 once, all at the same moment.
    threads = [
        threading.Thread(target=approve, args=(u,))
        for u in (people["approver1"], people["approver1"], people["approver2"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [type(e) for e in errors] == [DuplicateObject]
    cr.refresh_from_db()
    assert cr.status == "approved"
    assert Approval.objects.filter(change_request=cr, decision="approve").count() == 2
    assert AuditEvent.objects.filter(action="change_request.fully_approved", object_id=str(cr.pk)).count() == 1


def approved(people: dict[str, User], *edits: dict[str, Any], through: str = "service") -> ChangeRequest:
    """A request approved by the reviewers it needs: through the catalog service (no auto-apply: that is the
    interfaces' explicit second step), the page's approve form, or the API."""
    cr = submitted(people["author"], *edits)
    teams = {t["name"] for t in cr.required_teams}
    reviewers = [people["hr_approver"]] if "hr-data-platform" in teams else []
    reviewers += (
        [people["approver1"], people["approver2"]] if "people-analytics" in teams else [people["outside_approver"]]
    )
    for reviewer in reviewers[: max(cr.required_approvals, len(teams))]:
        if through == "service":
            change_request_approve(cr=cr, actor=reviewer)
        elif through == "page":
            page = Client()
            page.force_login(reviewer)
            assert page.post(f"/change-requests/{cr.pk}/approve/", {"revision": cr.revision}).status_code == 302
        else:
            api = APIClient()
            api.force_authenticate(reviewer)
            response = api.post(f"/api/v1/change-requests/{cr.pk}/approve/", {"revision": cr.revision}, format="json")
            assert response.status_code == 200, response.content
    cr.refresh_from_db()
    assert cr.status in {"approved", "applying", "applied"}, approval_status(cr)
    return cr


def test_apply_on_a_real_worker_writes_exactly_the_approved_protos(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any, webhook: Any
) -> None:
    register_model()
    cr = approved(people, RETYPE)
    with pytest.raises(NotPermitted):
        change_request_apply_start(cr=cr, actor=people["approver1"])
    run = change_request_apply_start(cr=cr, actor=people["operator"])
    cr = wait_for(cr, "applied", "failed", "stale")
    assert cr.status == "applied", cr.apply_result
    # The request is applied inside the job's body; the run itself is finished a moment later.
    assert wait_for_terminal(run).status == "succeeded"
    assert view_dtype(synced, "employee_features", "tenure") == "Int64"
    # Exactly the stored protos: every touched object's registry content hash is the approved one.
    now = feast_gateway.project_protos(synced, PROJECT, [(u["kind"], u["name"]) for u in cr.proposal["upserts"]])
    assert {k[1]: feast_gateway.content_hash(v) for k, v in now.items()} == {
        u["name"]: u["content_hash"] for u in cr.proposal["upserts"]
    }
    assert sorted(cr.apply_result["applied"]) == sorted(f"{u['kind']}:{u['name']}" for u in cr.proposal["upserts"])
    # The catalog (synced by the job the apply queued) shows the new version, linked to the request and
    # not flagged out-of-band.
    catalog_sync = wait_for_catalog(cr)
    # attributed to the operator who applied it, not to the request's author
    assert (catalog_sync.trigger, catalog_sync.started_by) == ("apply", people["operator"])
    version = ObjectVersion.objects.get(object__name="employee_features", change_request=cr)
    assert not version.out_of_band
    assert CatalogObject.objects.get(project__name=PROJECT, name="employee_features").version == version.version
    assert CatalogObject.objects.get(name="employee_features").features.get(name="tenure").dtype == "Int64"
    actions = set(AuditEvent.objects.filter(object_type="changerequest").values_list("action", flat=True))
    assert {
        "change_request.created",
        "change_request.submitted",
        "change_request.approved",
        "change_request.applied",
    } <= actions
    events = [r["event"] for r in webhook.received]
    assert {"change_request.submitted", "change_request.approved", "change_request.applied"} <= set(events)
    # A second sync finds nothing out-of-band.
    (run_after,) = registry_sync(project=PROJECT, trigger="test")
    assert run_after.out_of_band == 0


def test_a_registry_changed_since_the_plan_makes_the_request_stale(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    cr = approved(people, RETYPE)
    # Someone runs their own apply (outside the portal) on a view in the plan's scope.
    current = feast_gateway.project_protos(synced, PROJECT, [("feature_view", "employee_features")])
    upserts, _ = feast_gateway.apply_edits(
        current, [{"op": "add_field", "view": "employee_features", "field": "x", "dtype": "Int64"}]
    )
    feast_gateway.apply_protos(synced, PROJECT, list(upserts.values()), [])
    before = feast_gateway.registry_fingerprint(synced)
    change_request_apply_start(cr=cr, actor=people["operator"])
    cr = wait_for(cr, "applied", "failed", "stale")
    assert cr.status == "stale"
    # The reason names the object and the field that moved (from the catalog's version with the planned content).
    assert cr.stale_reason == (
        "the registry changed since the plan, outside this request: feature view 'employee_features' changed "
        "(features[x])"
    )
    assert feast_gateway.registry_fingerprint(synced) == before  # nothing written
    assert view_dtype(synced, "employee_features", "tenure") == "Float32"
    # Re-planning brings it back for review, with approvals reset.
    revised = change_request_revise(cr=cr, actor=people["author"])
    assert revised.status == "submitted" and revised.revision == 2
    assert approval_status(revised)["approvals"] == []


def test_materialization_between_plan_and_apply_does_not_make_it_stale(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    cr = approved(people, DESCRIBE)
    fingerprint = feast_gateway.registry_fingerprint(synced)
    from tests.conftest import run_feast

    end = env.DATA_END + timedelta(days=1)
    result = run_feast(synced, "materialize", env.DATA_END.isoformat(), end.isoformat(), "-v", "employee_features")
    assert result.returncode == 0, result.stderr
    assert feast_gateway.registry_fingerprint(synced) != fingerprint  # the raw registry did change
    change_request_apply_start(cr=cr, actor=people["operator"])
    assert wait_for(cr, "applied", "failed", "stale").status == "applied"


def test_auto_apply_projects_apply_on_approval(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    Project.objects.filter(name=PROJECT).update(auto_apply=True)
    cr = approved(people, DESCRIBE, through="page")  # the approve form's route starts the apply after it
    cr = wait_for(cr, "applied", "failed", "stale")
    assert cr.status == "applied"
    assert JobRun.objects.get(pk=cr.apply_job_id).trigger == "auto_apply"
    catalog_sync = wait_for_catalog(cr)
    assert (catalog_sync.trigger, catalog_sync.started_by) == ("apply", None)  # the portal's, not the author's


def test_a_failing_apply_reports_what_the_registry_holds(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any, settings: Any
) -> None:
    cr = approved(people, {"op": "delete", "kind": "feature_view", "name": "employee_activity"})
    assert [o["rule"] for o in cr.plan["objects"][0]["items"]] == ["view.removed"]
    # The online store is unreachable: Feast deletes the view from the registry, then fails deleting its
    # online rows. The deletion is rolled back with the rest of the apply, and the request says so.
    before = feast_gateway.registry_fingerprint(synced)
    settings.FEAST_CONFIG_VARS = {**settings.FEAST_CONFIG_VARS, "FEAST_REDIS_CONNECTION_STRING": "127.0.0.1:1"}
    change_request_apply_start(cr=cr, actor=people["operator"])
    cr = wait_for(cr, "applied", "failed", "stale")
    assert cr.status == "failed"
    assert "Connection" in cr.apply_result["error"] or "connect" in cr.apply_result["error"]
    assert feast_gateway.registry_fingerprint(synced) == before
    assert feast_gateway.project_protos(synced, PROJECT, [("feature_view", "employee_activity")])
    assert cr.apply_result["registry"] == "unchanged"
    assert cr.apply_result["applied"] == []
    assert cr.apply_result["not_applied"] == ["feature_view:employee_activity"]


def test_a_registry_unreachable_at_apply_fails_cleanly(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any, settings: Any
) -> None:
    cr = approved(people, DESCRIBE)
    before = feast_gateway.registry_fingerprint(synced)
    good = settings.FEAST_CONFIG_VARS
    settings.FEAST_CONFIG_VARS = {**good, "FEAST_REGISTRY_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    change_request_apply_start(cr=cr, actor=people["operator"])
    cr = wait_for(cr, "applied", "failed", "stale")
    settings.FEAST_CONFIG_VARS = good
    assert cr.status == "failed"
    assert "unreachable" in cr.apply_result["error"]
    assert cr.apply_result["applied"] == [] and cr.apply_result["not_applied"] == ["feature_view:department_features"]
    assert feast_gateway.registry_fingerprint(synced) == before
    assert not Project.objects.get(name=PROJECT).apply_lock_token  # the lock is released


@pytest.mark.django_db
def test_an_apply_ends_only_for_the_revision_it_applied(people: dict[str, User]) -> None:
    """The state machine's one exit from applying checks the revision the job was queued with."""
    from catalog.services.change_requests import change_request_apply_begin, change_request_apply_finished

    cr = approved(people, DESCRIBE)
    job_id = JobRun.objects.create(kind=JobRun.Kind.APPLY, params={"revision": cr.revision}).pk
    assert change_request_apply_begin(cr=cr, queue_job=lambda locked: job_id) == job_id
    assert (cr.status, cr.apply_job_id) == ("applying", job_id)
    assert not change_request_apply_finished(cr=cr, status="applied", result={}, revision=cr.revision + 1)
    assert cr.status == "applying" and cr.applied_at is None
    assert change_request_apply_finished(cr=cr, status="failed", result={"error": "x"}, revision=cr.revision)
    assert cr.status == "failed" and cr.apply_result == {"error": "x"}
    with pytest.raises(ValueError):
        change_request_apply_finished(cr=cr, status="submitted", result={}, revision=cr.revision)


@pytest.mark.django_db
@pytest.mark.parametrize("through", ["service", "page", "api"])
def test_only_the_approval_interfaces_start_an_auto_apply(people: dict[str, User], through: str) -> None:
    """The catalog's approval service only records the decision; the page's and the API's approve routes then
    call the jobs service that starts the apply, attributed to the portal, for auto-apply projects."""
    Project.objects.filter(name=PROJECT).update(auto_apply=True)
    cr = approved(people, DESCRIBE, through=through)
    runs = list(JobRun.objects.filter(kind=JobRun.Kind.APPLY))
    if through == "service":
        assert cr.status == "approved" and runs == []
    else:
        assert cr.status == "applying" and [(r.pk, r.trigger, r.started_by) for r in runs] == [
            (cr.apply_job_id, "auto_apply", None)
        ]


@pytest.mark.django_db
def test_an_auto_apply_that_cannot_start_is_said_on_the_request(people: dict[str, User]) -> None:
    """Not only logged: the request's audit trail (and, while it is approved, its page) says why."""
    from jobs.services.apply import change_request_auto_apply

    cr = approved(people, DESCRIBE)  # auto-apply off: it stays approved
    Project.objects.filter(name=PROJECT).update(auto_apply=True)
    ChangeRequest.objects.filter(pk=cr.pk).update(status="withdrawn")  # someone acted first
    change_request_auto_apply(cr)  # this copy still says approved: the start is refused
    event = AuditEvent.objects.get(action="change_request.auto_apply_not_started", object_id=str(cr.pk))
    assert "only approved requests can be applied" in event.after["error"]
    assert not JobRun.objects.filter(kind=JobRun.Kind.APPLY).exists()
