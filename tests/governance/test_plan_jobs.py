"""Uploads are parsed and planned in a worker's plan job, never in a web request: 202 + the job, its progress and
result, a refused upload that stores nothing, the API answering while a slow upload is planned, revisions by
upload, CI's per-branch idempotency, and the browser's upload form following the job."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from catalog import feast_gateway
from catalog.models import ChangeRequest
from jobs.models import JobRun, PlanUpload
from tests.governance.conftest import PROJECT, PROPOSE_UPLOAD
from tests.governance.test_api import client_for, demo_archive

RETYPE_HEADCOUNT = 'Field(name="headcount", dtype=Int64=>Field(name="headcount", dtype=Float64'
REF = {"external_repo": "acme/features", "external_branch": "retype-headcount"}


def finished(api: APIClient, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job through the API until it is terminal (bounded by the number of polls, not by a clock)."""
    for _ in range(600):
        body: dict[str, Any] = api.get(f"/api/v1/jobs/{job['id']}/").json()
        if body["status"] in JobRun.TERMINAL:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job['id']} never finished: {body}")


def upload(data: bytes, **fields: Any) -> dict[str, Any]:
    return {"project": PROJECT, "title": "retype headcount", "archive": io.BytesIO(data), "submit": "true", **fields}


def slow_archive(seconds: int) -> bytes:
    """The demo repo with a definitions file that takes `seconds` to import (a slow parse in the sandbox)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("repo/features.py", demo_archive_text(RETYPE_HEADCOUNT))
        zf.writestr("repo/slow.py", f"import time\ntime.sleep({seconds})\n")
    return buffer.getvalue()


def demo_archive_text(edit: str) -> str:
    with zipfile.ZipFile(io.BytesIO(demo_archive(edit))) as zf:
        return zf.read("repo/features.py").decode()


def test_an_upload_answers_202_with_the_plan_job_whose_result_names_the_request(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    api = client_for(people["author"], "read", "propose")
    response = api.post("/api/v1/change-requests/", upload(demo_archive(RETYPE_HEADCOUNT)), format="multipart")
    assert response.status_code == 202, response.content[:500]
    job = response.json()
    assert job["kind"] == "plan" and response["Location"] == job["url"] == f"/api/v1/jobs/{job['id']}/"
    done = finished(api, job)
    assert done["status"] == "succeeded", done["error"]
    cr = ChangeRequest.objects.get()
    assert done["result"] | {"summary": None, "url": None} == {
        "change_request": cr.pk,
        "revision": 1,
        "outcome": "created",
        "severity": "breaking",
        "status": "submitted",
        "summary": None,
        "url": None,
    }
    assert done["progress_message"] == f"stored as CR-{cr.pk} revision 1"
    assert [step in done["log"] for step in ("parsing the upload in the sandbox", "planning against the registry")] == [
        True,
        True,
    ]
    assert not PlanUpload.objects.exists()  # the archive's bytes are gone once the job ended
    assert [(o["name"], o["action"]) for o in api.get(f"/api/v1/change-requests/{cr.pk}/").json()["objects"]] == [
        ("department_features", "upsert")
    ]


def test_a_refused_upload_fails_its_job_with_the_sandbox_message_and_stores_nothing(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    api = client_for(people["author"], "read", "propose")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("features.py", "this is not python(\n")
    response = api.post("/api/v1/change-requests/", upload(buffer.getvalue()), format="multipart")
    assert response.status_code == 202
    done = finished(api, response.json())
    assert done["status"] == "failed"
    assert "features.py" in done["error"] and "Traceback" not in done["error"]
    assert done["result"]["code"] == "invalid"
    assert not ChangeRequest.objects.exists() and not PlanUpload.objects.exists()
    # the same upload with ?wait= answers as the propose did before: a 400 with the same message
    waited = api.post(PROPOSE_UPLOAD, upload(buffer.getvalue()), format="multipart")
    assert waited.status_code == 400 and waited.json()["error"]["message"] == done["error"]
    assert not ChangeRequest.objects.exists()
    # an archive that is not one is refused by the web's quick check: no job at all
    bad = api.post("/api/v1/change-requests/", upload(b"not an archive"), format="multipart")
    assert bad.status_code == 400 and "is not a .zip, .tar or .tar.gz archive" in bad.json()["error"]["message"]
    assert JobRun.objects.filter(kind="plan").count() == 2


def test_the_api_answers_while_a_slow_upload_is_planned(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    api = client_for(people["author"], "read", "propose")
    response = api.post("/api/v1/change-requests/", upload(slow_archive(8)), format="multipart")
    assert response.status_code == 202
    job = response.json()
    seen: list[str] = []
    for _ in range(5):
        me = api.get("/api/v1/me/")
        listed = api.get("/api/v1/change-requests/")
        assert me.status_code == 200 and listed.status_code == 200
        seen.append(JobRun.objects.get(pk=job["id"]).status)
    assert seen[-1] in ("queued", "running")  # answered while the plan was still being made
    assert finished(api, job)["status"] == "succeeded"


def test_a_revision_by_upload_is_a_plan_job(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    api = client_for(people["author"], "read", "propose")
    created = api.post(PROPOSE_UPLOAD, upload(demo_archive(RETYPE_HEADCOUNT)), format="multipart")
    assert created.status_code == 201, created.content[:500]
    cr_id = created.json()["id"]
    retype = 'Field(name="headcount", dtype=Int64, description="Active employees in the department."=>Field(name="headcount", dtype=Int64, description="Active employees."'
    revise = api.post(
        f"/api/v1/change-requests/{cr_id}/revise/", {"archive": io.BytesIO(demo_archive(retype))}, format="multipart"
    )
    assert revise.status_code == 202
    done = finished(api, revise.json())
    assert done["status"] == "succeeded", done["error"]
    assert (done["result"]["change_request"], done["result"]["revision"], done["result"]["outcome"]) == (
        cr_id,
        2,
        "revised",
    )
    # a revision that does not parse leaves the request at its revision
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("features.py", "import nowhere_to_be_found\n")
    failed = api.post(
        f"/api/v1/change-requests/{cr_id}/revise/?wait=30",
        {"archive": io.BytesIO(broken.getvalue())},
        format="multipart",
    )
    assert failed.status_code == 400 and "nowhere_to_be_found" in failed.json()["error"]["message"]
    assert ChangeRequest.objects.get(pk=cr_id).revision == 2


def test_ci_proposes_for_a_branch_idempotently_through_the_job(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    api = client_for(people["author"], "read", "propose")
    data = demo_archive(RETYPE_HEADCOUNT)
    first = finished(api, api.post("/api/v1/change-requests/", upload(data, **REF), format="multipart").json())
    assert first["result"]["outcome"] == "created"
    same = finished(
        api,
        api.post("/api/v1/change-requests/", upload(data, **REF, external_sha="abcdef1"), format="multipart").json(),
    )
    assert (same["status"], same["result"]["outcome"], same["result"]["revision"]) == ("succeeded", "unchanged", 1)
    cr = ChangeRequest.objects.get()
    assert (cr.revision, cr.external_sha) == (1, "abcdef1")
    other = demo_archive(
        'Field(name="headcount", dtype=Int64, description="Active employees in the department."=>Field(name="headcount", dtype=Int64, description="Active employees."'
    )
    revised = api.post(PROPOSE_UPLOAD, upload(other, **REF), format="multipart")
    assert revised.status_code == 200 and (revised.json()["outcome"], revised.json()["revision"]) == ("revised", 2)
    assert ChangeRequest.objects.count() == 1


def test_the_upload_form_follows_the_plan_job_to_the_request_or_back_to_the_form(
    people: dict[str, User], synced: feast_gateway.RepoRef, celery_worker: Any, tmp_path: Path
) -> None:
    page = Client()
    page.force_login(people["author"])
    archive = io.BytesIO(demo_archive(RETYPE_HEADCOUNT))
    archive.name = "repo.zip"
    form = {"project": PROJECT, "title": "retype", "description": "why", "mode": "partial", "archive": archive}
    response = page.post("/jobs/change-requests/upload/", form)
    assert response.status_code == 302 and response["Location"].startswith("/jobs/")
    run = JobRun.objects.get(kind="plan")
    assert page.get(response["Location"]).status_code == 200
    for _ in range(600):
        polled = page.get(f"/jobs/{run.pk}/status/", HTTP_HX_REQUEST="true")
        if "HX-Redirect" in polled:
            break
        time.sleep(0.1)
    cr = ChangeRequest.objects.get()
    assert polled["HX-Redirect"] == cr.get_absolute_url()
    assert f"Open CR-{cr.pk}" in page.get(f"/jobs/{run.pk}/").content.decode()
    # a repo that does not parse: the job page says why and links back to the form with what was typed
    broken = io.BytesIO(b"")
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("features.py", "raise SystemExit(3)\n")
    broken.seek(0)
    broken.name = "broken.zip"
    response = page.post("/jobs/change-requests/upload/", {**form, "title": "broken one", "archive": broken})
    failed = JobRun.objects.filter(kind="plan").order_by("-id").first()
    assert failed is not None
    for _ in range(600):
        failed.refresh_from_db()
        if failed.is_terminal:
            break
        time.sleep(0.1)
    shown = page.get(response["Location"]).content.decode()
    assert failed.status == "failed" and 'id="plan-retry"' in shown and "title=broken+one" in shown
    retry = page.get("/change-requests/new/?project=employee_attrition&title=broken+one&description=why").content
    assert b'value="broken one"' in retry and b">why</textarea>" in retry
    assert ChangeRequest.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_form_upload_keeps_what_was_typed(people: dict[str, User]) -> None:
    page = Client()
    page.force_login(people["author"])
    bad = io.BytesIO(b"not an archive")
    bad.name = "x.zip"
    response = page.post(
        "/jobs/change-requests/upload/", {"project": PROJECT, "title": "kept title", "mode": "partial", "archive": bad}
    )
    assert response.status_code == 400
    assert b'value="kept title"' in response.content and b"is not a .zip" in response.content
    assert not JobRun.objects.filter(kind="plan").exists()
