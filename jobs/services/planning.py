"""The plan job: an uploaded feature repo is parsed (in the upload sandbox) and planned in a worker, never in a
web request.

The web tier makes only the quick checks (`change_request_upload_check`: roles, title, project, mode, the
archive's headers and members), stores the archive's bytes in the database (`PlanUpload`: the web pod and the
worker may be different machines) and queues the job. The worker calls the catalog's one propose path
(`change_request_create`, `change_request_revise`, or CI's `change_request_propose_for_ref`), which parses,
plans and stores the request exactly as before, reporting each step on the run. A refused upload fails the job
with the sandbox's (or planner's) message and stores no request and no revision. The bytes are deleted when
the job ends.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from catalog.exceptions import PortalError
from catalog.models import ChangeRequest
from catalog.services import change_requests as crs
from jobs.models import JobRun, PlanUpload
from jobs.services.core import JobFailed, job_run_log, job_run_progress, job_run_queue
from jobs.services.preview import job_run_wait

PLAN_WAIT_MAX_SECONDS = 30.0  # the longest `?wait=` a propose holds its web thread for (a bounded short wait)
STEPS = ("parsing the upload in the sandbox", "planning against the registry")


@transaction.atomic
def change_request_plan_start(
    *,
    actor: Any,
    upload: tuple[bytes, str],
    trigger: str,
    project: str = "",
    title: str = "",
    description: str = "",
    mode: str | None = None,
    submit: bool = False,
    external: crs.ExternalRef | None = None,
    cr: ChangeRequest | None = None,
) -> JobRun:
    """Queue the parse and plan of an uploaded repo: a new request (or CI's propose for `external`), or a new
    revision of `cr`. The quick checks run here (bad input raises and queues nothing); the archive is stored
    for the worker. `trigger`: "api" or "button"."""
    data, filename = upload
    crs.change_request_upload_check(
        actor=actor, upload=upload, project=project, title=title, description=description, mode=mode, cr=cr
    )
    archive = {"name": filename[:255], "bytes": len(data)}
    if cr is not None:
        params: dict[str, Any] = {"change_request": cr.pk, "project": cr.project.name, "mode": mode or cr.mode}
    else:
        params = {"project": project, "title": title, "description": description, "mode": mode, "submit": submit}
        if external is not None:
            params["external"] = {"repo": external.repo, "branch": external.branch, "sha": external.sha}
    run = job_run_queue(
        kind=JobRun.Kind.PLAN,
        params={**params, "archive": archive},
        actor=actor,
        trigger=trigger,
        action="change_request.plan_started",
        audit_after={k: v for k, v in params.items() if k != "description"} | {"archive": archive},
    )
    upload_row = PlanUpload(job_run=run, filename=filename[:255], data=data)
    upload_row.full_clean(exclude=["data"])  # BinaryField is not editable: full_clean would flag it blank
    upload_row.save()
    return run


def change_request_plan_run(run: JobRun) -> dict[str, Any]:
    """The worker side: parse and plan through the catalog's propose services, then drop the stored archive.
    The result: the request, its revision, the outcome (created, revised, unchanged) and its severity."""
    params = run.params or {}
    stored = PlanUpload.objects.filter(job_run_id=run.pk).first()
    if stored is None:
        raise JobFailed("the uploaded archive is no longer stored (the job ran before); upload it again")
    upload = (bytes(stored.data), stored.filename)
    total = len(STEPS) + 1

    def progress(message: str) -> None:
        done = STEPS.index(message) if message in STEPS else 0
        job_run_progress(run=run, done=done, total=total, message=message)
        job_run_log(run=run, line=message)

    actor = run.started_by
    try:
        if params.get("change_request"):
            cr = ChangeRequest.objects.select_related("project", "author").filter(pk=params["change_request"]).first()
            if cr is None:
                raise JobFailed(f"CR-{params['change_request']} no longer exists")
            cr, outcome = (
                crs.change_request_revise(
                    cr=cr, actor=actor, upload=upload, mode=params.get("mode"), progress=progress
                ),
                "revised",
            )
        elif params.get("external"):
            ref = crs.ExternalRef(**params["external"])
            cr, outcome = crs.change_request_propose_for_ref(
                actor=actor,
                project=params["project"],
                ref=ref,
                title=params["title"],
                description=params.get("description", ""),
                upload=upload,
                mode=params.get("mode"),
                submit=bool(params.get("submit")),
                progress=progress,
            )
        else:
            cr = crs.change_request_create(
                actor=actor,
                project=params["project"],
                title=params["title"],
                description=params.get("description", ""),
                upload=upload,
                mode=params.get("mode") or ChangeRequest.Mode.PARTIAL,
                submit=bool(params.get("submit")),
                progress=progress,
            )
            outcome = "created"
    except PortalError as exc:
        raise JobFailed(str(exc), {"code": exc.code, "status_code": exc.status_code}) from None
    finally:
        PlanUpload.objects.filter(job_run_id=run.pk).delete()
    done = f"stored as CR-{cr.pk} revision {cr.revision}"
    if outcome == "unchanged":
        done = f"the same upload as CR-{cr.pk} revision {cr.revision}: no new revision"
    job_run_progress(run=run, done=total, total=total, message=done)
    job_run_log(run=run, line=done)
    return {
        "change_request": cr.pk,
        "revision": cr.revision,
        "outcome": outcome,
        "severity": cr.severity,
        "status": cr.status,
        "summary": dict(cr.plan.get("summary", {})),
        "url": cr.get_absolute_url(),
    }


def change_request_plan_wait(*, run: JobRun, seconds: float) -> JobRun:
    """Wait up to `seconds` (at most PLAN_WAIT_MAX_SECONDS) for the plan job to finish: the API's `?wait=`."""
    seconds = min(max(seconds, 0.0), PLAN_WAIT_MAX_SECONDS)
    if seconds <= 0:
        return run
    return job_run_wait(run=run, timeout=seconds)
