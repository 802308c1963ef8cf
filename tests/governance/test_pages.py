"""Governance pages (server-rendered): who sees what, the propose forms, the upload form, the audit page."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import AuditEvent, ChangeRequest
from catalog.services.change_requests import change_request_create
from jobs.models import JobRun
from tests.governance.conftest import PROJECT

pytestmark = pytest.mark.django_db
VIEW_URL = f"/projects/{PROJECT}/feature-views/employee_features/"


def test_anonymous_users_go_to_login(client: Client) -> None:
    for url in ("/change-requests/", "/change-requests/new/", "/audit/", "/change-requests/1/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_viewers_see_no_propose_forms_and_cannot_propose(client: Client, people: dict[str, User]) -> None:
    client.force_login(people["viewer"])
    page = client.get(VIEW_URL).content.decode()
    assert 'id="propose"' not in page
    response = client.post(VIEW_URL + "propose/", {"op": "set_ttl", "ttl_days": "1"}, follow=True)
    assert "Nothing was proposed" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    assert client.get("/change-requests/new/").status_code == 403


def test_a_proposer_plans_a_change_from_the_view_page(client: Client, people: dict[str, User]) -> None:
    client.force_login(people["author"])
    page = client.get(VIEW_URL).content.decode()
    assert 'id="propose"' in page and "Change a field" in page
    response = client.post(
        VIEW_URL + "propose/", {"op": "set_ttl", "ttl_days": "1", "title": "shorter TTL", "submit": "1"}
    )
    cr = ChangeRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == cr.get_absolute_url()
    assert cr.status == "submitted" and cr.title == "shorter TTL"
    detail = client.get(cr.get_absolute_url()).content.decode()
    assert "TTL 7d → 1d" in detail and "view.ttl_decreased" in detail
    assert "someone else must approve" in detail
    # The open request shows on the view's page and on the dashboard.
    assert f"CR-{cr.pk}" in client.get(VIEW_URL).content.decode()
    assert f"CR-{cr.pk}" in client.get("/").content.decode()


def test_the_source_columns_are_listed_where_fields_are_added(client: Client, people: dict[str, User]) -> None:
    """The data source page lists the columns in the data (read from the parquet file), and the add-field
    form of a view over it offers them: a field the source lacks is refused at plan time anyway."""
    client.force_login(people["author"])
    source = client.get(f"/projects/{PROJECT}/data-sources/department_stats/").content.decode()
    assert 'id="source-columns"' in source
    for column, dtype in [("headcount", "Int64"), ("attrition_rate_90d", "Float32"), ("leavers", "Int64")]:
        assert f'<td class="mono wrap">{column}</td><td>{dtype}</td>' in source
    view = client.get(f"/projects/{PROJECT}/feature-views/department_features/").content.decode()
    assert '<datalist id="source-columns">' in view and '<option value="leavers">Int64</option>' in view


def test_a_bad_form_value_changes_nothing_and_says_why(client: Client, people: dict[str, User]) -> None:
    client.force_login(people["author"])
    response = client.post(VIEW_URL + "propose/", {"op": "set_ttl", "ttl_days": "soon"}, follow=True)
    assert "Nothing was proposed" in response.content.decode() and "ttl_seconds" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_the_upload_form_refuses_a_bad_archive_clearly(client: Client, people: dict[str, User]) -> None:
    client.force_login(people["author"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.py", "x = 1")
    assert client.post("/change-requests/new/", {"project": PROJECT}).status_code == 405  # the form posts to:
    response = client.post(
        "/jobs/change-requests/upload/",  # the quick checks, then a plan job (see test_plan_jobs.py)
        {
            "project": PROJECT,
            "title": "evil",
            "mode": "partial",
            "archive": SimpleUploadedFile("evil.zip", buffer.getvalue()),
        },
    )
    assert response.status_code == 400
    assert "escapes the archive" in response.content.decode() and 'value="evil"' in response.content.decode()
    assert not ChangeRequest.objects.exists() and not JobRun.objects.exists()  # refused before any job


def test_reviewers_act_from_the_detail_page(client: Client, people: dict[str, User]) -> None:
    cr = change_request_create(
        actor=people["author"],
        project=PROJECT,
        title="describe",
        edits=[{"op": "set_metadata", "kind": "entity", "name": "department_id", "description": "Org unit id."}],
        submit=True,
    )
    client.force_login(people["hr_approver"])
    assert 'id="approve-button"' in client.get(cr.get_absolute_url()).content.decode()
    response = client.post(f"/change-requests/{cr.pk}/reject/", {"comment": "", "revision": cr.revision}, follow=True)
    assert "needs a comment" in response.content.decode()
    client.post(f"/change-requests/{cr.pk}/approve/", {"revision": cr.revision})
    cr.refresh_from_db()
    assert cr.status == "approved"
    client.force_login(people["operator"])
    assert 'id="apply-button"' in client.get(cr.get_absolute_url()).content.decode()


def test_the_audit_page_filters_and_offers_no_edits(
    client: Client, people: dict[str, User], django_assert_max_num_queries: Any
) -> None:
    change_request_create(
        actor=people["author"],
        project=PROJECT,
        title="t",
        edits=[{"op": "set_metadata", "kind": "entity", "name": "department_id", "description": "x"}],
    )
    client.force_login(people["viewer"])
    with django_assert_max_num_queries(12):
        page = client.get("/audit/?action=change_request.created").content.decode()
    assert "change_request.created" in page and "catalog.sync" not in page
    assert 'method="post" action="/audit' not in page  # no page offers to change an event
    assert AuditEvent.objects.filter(action="change_request.created").count() == 1
    assert client.get("/audit/?since=not-a-date").status_code == 200


def test_the_audit_log_links_only_to_jobs_the_viewer_may_open(client: Client, people: dict[str, User]) -> None:
    """A preview's job holds somebody's feature values: the audit log names it but links to it only for those
    who may open it (its starter, operators); the job page then says why it is not there, not "renamed or
    removed from the registry"."""
    from catalog.services.audit import audit_record
    from jobs.services.preview import online_preview_start

    run = online_preview_start(
        actor=people["operator"],
        project=PROJECT,
        feature_service="attrition_model_v1",
        entities={"employee_id": [1]},
        trigger="button",
    )
    audit_record(actor=None, action="job.failed", object_type="jobrun", object_id=str(run.pk), job_run_id=run.pk)
    link = f'href="/jobs/{run.pk}/"'
    client.force_login(people["viewer"])
    page = client.get("/audit/?action=job.failed").content.decode()
    assert f"job #{run.pk}" in page and link not in page
    missing = client.get(f"/jobs/{run.pk}/")
    assert missing.status_code == 404
    assert "only the person who ran it and operators" in missing.content.decode()
    assert "removed from the registry" not in missing.content.decode()
    client.force_login(people["operator"])
    assert link in client.get("/audit/?action=job.failed").content.decode()


def test_admin_edits_of_teams_and_governance_settings_are_audited(
    client: Client, people: dict[str, User], admin_user: User
) -> None:
    """The Django admin writes the same audit events as the API, with before and after, by the admin."""
    from catalog.models import Project, Team

    client.force_login(admin_user)
    form = {
        "name": "ml-platform",
        "description": "Serving.",
        "members": [people["author"].pk],
        "aliases-TOTAL_FORMS": "1",
        "aliases-INITIAL_FORMS": "0",
        "aliases-0-alias": "ml@example.com",
    }
    response = client.post("/admin/catalog/team/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(name="ml-platform")
    created = AuditEvent.objects.get(action="team.created", object_id=str(team.pk))
    assert created.actor_name == admin_user.username
    assert created.after["aliases"] == ["ml@example.com"] and created.after["members"]

    form.update({"description": "Serving and features.", "aliases-INITIAL_FORMS": "0", "aliases-0-alias": ""})
    assert client.post(f"/admin/catalog/team/{team.pk}/change/", form).status_code == 302
    updated = AuditEvent.objects.get(action="team.updated", object_id=str(team.pk))
    assert (updated.before["description"], updated.after["description"]) == ("Serving.", "Serving and features.")

    project = Project.objects.get(name=PROJECT)
    response = client.post(
        f"/admin/catalog/project/{project.pk}/change/",
        {"compatibility": project.compatibility, "auto_apply": "on", "breaking_approvals": 3},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = AuditEvent.objects.get(action="project.governance_changed", object_id=str(project.pk))
    assert (changed.before["auto_apply"], changed.after["auto_apply"]) == (False, True)
    assert changed.after["breaking_approvals"] == 3

    assert client.post(f"/admin/catalog/team/{team.pk}/delete/", {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="team.deleted", object_id=str(team.pk)).exists()


def test_the_list_pages_and_the_api_lists_filter_and_order_alike(client: Client, people: dict[str, User]) -> None:
    """One FilterSet per list, applied by the selector both read: same parameters, same rows, same order."""
    import re
    from datetime import UTC, datetime

    for i, author in enumerate(["author", "author", "approver1"]):
        change_request_create(
            actor=people[author],
            project=PROJECT,
            title=f"t{i}",
            edits=[{"op": "set_metadata", "kind": "entity", "name": "department_id", "description": f"x{i}"}],
        )
    client.force_login(people["author"])
    for query in ({"status": "draft", "author": "pat"}, {"status": "open"}, {"mine": "true"}):
        page = client.get("/change-requests/", query).content.decode()
        on_page = [int(n) for n in re.findall(r'href="/change-requests/(\d+)/"', page)]
        api = client.get("/api/v1/change-requests/", query).json()["results"]
        assert on_page == [r["id"] for r in api], query
        assert on_page == sorted(on_page, reverse=True)  # newest first, on both
    mine = client.get("/api/v1/change-requests/", {"mine": "true"}).json()["results"]
    assert len(mine) == 2
    bad = client.get("/api/v1/change-requests/", {"severity": "catastrophic"})
    assert bad.status_code == 400 and "severity" in bad.json()["error"]["details"]

    today = datetime.now(UTC).date().isoformat()
    page = client.get("/audit/", {"since": today, "q": "change_request.created"}).content.decode()
    api = client.get("/api/v1/audit/", {"since": today, "q": "change_request.created"}).json()["results"]
    assert len(api) == 3 and all(e["action"] == "change_request.created" for e in api)
    assert page.count("change_request.created</code>") == 3
    assert client.get("/api/v1/audit/", {"since": "not-a-date"}).status_code == 400
    refused = client.get("/audit/", {"since": "not-a-date"})
    assert refused.status_code == 200 and "not an ISO 8601" in refused.content.decode()


def test_an_object_page_finds_its_open_requests_however_many_others_there_are(
    client: Client, people: dict[str, User], django_assert_max_num_queries: Any
) -> None:
    """The requests touching an object are indexed (ChangeRequestObject), not found by reading the newest 200
    plans: 250 newer requests about another object neither hide it nor slow the page down."""
    from catalog.models import ChangeRequestObject, Project

    target = change_request_create(
        actor=people["author"],
        project=PROJECT,
        title="about employee_features",
        edits=[{"op": "set_metadata", "kind": "feature_view", "name": "employee_features", "description": "x"}],
    )
    assert set(target.touches.values_list("kind", "name")) >= {("feature_view", "employee_features")}
    project = Project.objects.get(name=PROJECT)
    others = ChangeRequest.objects.bulk_create(
        [
            ChangeRequest(
                project=project,
                title=f"other {i}",
                author=people["author"],
                source="edit",
                plan={"objects": [{"kind": "feature_view", "name": "department_features", "items": []}]},
            )
            for i in range(250)
        ]
    )
    ChangeRequestObject.objects.bulk_create(
        [ChangeRequestObject(change_request=cr, kind="feature_view", name="department_features") for cr in others]
    )
    client.force_login(people["viewer"])
    with django_assert_max_num_queries(60):
        page = client.get(f"/projects/{PROJECT}/feature-views/employee_features/").content.decode()
    assert f"CR-{target.pk}: about employee_features" in page and "other 1" not in page
