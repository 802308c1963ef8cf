"""Applying an approved change request: exactly its stored protos, one apply per project at a time.

The worker:
1. takes the project's apply lock (a conditional UPDATE with an expiry; Feast applies without any lock);
2. compares the registry content of the plan's scope with the plan's base fingerprint: if anything in
   scope changed since the plan, the request becomes stale (re-plan, re-approve) and nothing is written;
3. records the content hashes it is about to write (ExpectedChange), so the catalog sync marks the new
   versions as this request's, not out-of-band;
4. applies the stored protos with Feast's SDK (only the objects the request touches), all or nothing: one
   database transaction on a SQL registry, a new file renamed into place on a file registry;
5. reads the touched objects back, syncs the project's catalog and records the result.

After any failure (an error, or a worker that died: see change_requests_sweep) the request records, object
by object, what the registry holds (applied / not applied) and which of the two possible states it is in:
"unchanged" (the request becomes failed, and its expected hashes are dropped: the sync never credits a
failed request) or "fully applied" (the write committed before the failure: the request is applied).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.diff import diff_specs
from catalog.exceptions import NotPermitted, PortalError, RegistryUnavailable
from catalog.leases import Lease
from catalog.models import ChangeRequest, ExpectedChange, ObjectVersion, Project
from catalog.notifications import notify
from catalog.services.audit import audit_record
from catalog.services.change_requests import (
    can_apply,
    change_request_apply_begin,
    change_request_apply_finished,
    change_request_auto_apply_not_started,
    governed_repo,
)
from catalog.services.planning import Proposal
from jobs.models import JobRun
from jobs.services.core import JobFailed, job_run_log, job_run_progress, job_run_queue

logger = logging.getLogger(__name__)
CR = ChangeRequest.Status
# What an apply left in the registry (apply_result["registry"]): its write is all or nothing.
UNCHANGED = "unchanged"
FULLY_APPLIED = "fully applied"
APPLY_LOCK = Lease(Project, until="apply_locked_until", holder="apply_lock_token")  # one apply per project


def change_request_apply_start(*, cr: ChangeRequest, actor: Any, trigger: str = "button") -> JobRun:
    """Approved → applying, and queue the apply job (operators; or the system for auto-apply projects)."""
    if actor is not None and not can_apply(actor):
        raise NotPermitted("Applying needs the operator role or above.")

    def queue(locked: ChangeRequest) -> int:
        run = job_run_queue(
            kind=JobRun.Kind.APPLY,
            params={"change_request": locked.pk, "revision": locked.revision, "project": locked.project.name},
            actor=actor,
            trigger=trigger,
            action="change_request.apply_started",
        )
        return int(run.pk)

    return JobRun.objects.get(pk=change_request_apply_begin(cr=cr, queue_job=queue))


def change_request_auto_apply(cr: ChangeRequest) -> ChangeRequest:
    """Called by the interfaces that record approvals (jobs.api.governance, jobs.views), after the catalog
    service committed: a request of an auto-apply project that is now approved starts its apply, attributed
    to the portal. A start that fails is recorded on the request. The request as it now is."""
    if cr.status != CR.APPROVED:
        return cr
    if Project.objects.filter(pk=cr.project_id).values_list("auto_apply", flat=True).first():
        try:
            change_request_apply_start(cr=cr, actor=None, trigger="auto_apply")
        except PortalError as exc:
            logger.warning("auto-apply of CR-%s did not start: %s", cr.pk, exc)
            change_request_auto_apply_not_started(cr=cr, reason=str(exc))
        cr.refresh_from_db()
    return cr


# --- The worker side ---------------------------------------------------------------------------------------


def _what_registry_holds(repo: gateway.RepoRef, project: str, proposal: Proposal) -> tuple[list[str], list[str]]:
    """Per touched object: is the registry now as the request wanted it? (applied, not applied)."""
    now = gateway.project_protos(repo, project, proposal.keys)
    applied: list[str] = []
    not_applied: list[str] = []
    hashes: dict[tuple[str, str], str] = {}
    for key in sorted(proposal.keys):
        label = f"{key[0]}:{key[1]}"
        obj = now.get(key)
        hashes[key] = gateway.content_hash(obj) if obj else ""
        if key in proposal.deletes:
            (applied if obj is None else not_applied).append(label)
        else:
            wanted = gateway.content_hash(proposal.upserts[key])
            (applied if obj is not None and hashes[key] == wanted else not_applied).append(label)
    return applied, not_applied


def change_request_apply_run(run: JobRun) -> dict[str, Any]:
    """The apply job's body (see the module docstring)."""
    cr = ChangeRequest.objects.select_related("project").get(pk=run.params["change_request"])
    if cr.status != CR.APPLYING or cr.revision != run.params.get("revision"):
        raise JobFailed(f"CR-{cr.pk} is {cr.status} (revision {cr.revision}); nothing applied")
    project, revision = cr.project, int(run.params["revision"])
    token = uuid.uuid4().hex
    started, begun = time.monotonic(), timezone.now()
    if not APPLY_LOCK.take(token, timedelta(seconds=settings.GOVERNANCE_APPLY_LOCK_SECONDS), pk=project.pk):
        busy = {"error": f"another apply holds project {project.name}'s lock; try again when it finishes"}
        change_request_apply_finished(cr=cr, status=CR.APPROVED, result=busy, revision=revision)
        raise JobFailed(busy["error"], busy)
    try:
        return _apply_locked(run, cr, token, started)
    except JobFailed:
        raise
    except Exception as exc:
        logger.exception("apply of CR-%s failed", cr.pk)
        if ExpectedChange.objects.filter(change_request=cr, created_at__gte=begun).exists():  # it got to the write
            return _settle_after_error(run, cr, Proposal.from_json(cr.proposal), governed_repo(project), exc)
        # before anything was written (the registry unreachable, a bad config...)
        result: dict[str, Any] = {
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "registry": UNCHANGED,
            "applied": [],
            "not_applied": cr.plan_keys(),
        }
        change_request_apply_finished(cr=cr, status=CR.FAILED, result=result, revision=revision)
        audit_record(actor=None, action="change_request.apply_failed", obj=cr, after=result, job_run_id=run.pk)
        notify("change_request.failed", f"CR-{cr.pk} failed to apply: {cr.title}", {"error": result["error"][:500]})
        raise JobFailed(result["error"], result) from exc
    finally:
        APPLY_LOCK.release(token, pk=project.pk)


def _stale_reason(cr: ChangeRequest, repo: gateway.RepoRef, scope: list[tuple[str, str]]) -> str:
    """Which objects in the plan's scope moved since the plan, and which of their fields (from the version
    the catalog recorded with the planned content, when it has one)."""
    planned = cr.plan.get("scope_hashes", {})
    now = gateway.project_protos(repo, cr.project.name, scope)
    moved = []
    for key in sorted(scope):
        label = f"{key[0]}:{key[1]}"
        current = now.get(key)
        base = planned.get(label)
        if base == (gateway.content_hash(current) if current else "absent"):
            continue
        what = f"{key[0].replace('_', ' ')} '{key[1]}'"
        if current is None:
            moved.append(f"{what} was deleted")
            continue
        if base == "absent":
            moved.append(f"{what} was added")
            continue
        snapshot = (
            ObjectVersion.objects.filter(
                object__project=cr.project, object__kind=key[0], object__name=key[1], content_hash=base
            )
            .order_by("-version")
            .values_list("snapshot", flat=True)
            .first()
        )
        fields = [c["path"] for c in diff_specs(snapshot, gateway.spec_json(current))] if snapshot is not None else []
        by = (
            ObjectVersion.objects.filter(
                object__project=cr.project,
                object__kind=key[0],
                object__name=key[1],
                content_hash=gateway.content_hash(current),
                change_request__isnull=False,
            )
            .order_by("-version")
            .values_list("change_request_id", flat=True)
            .first()
        )
        moved.append(
            f"{what} changed" + (f" ({', '.join(fields[:5])})" if fields else "") + (f" by CR-{by}" if by else "")
        )
    detail = "; ".join(moved[:10]) or "an object in the plan's scope was modified"
    return f"the registry changed since the plan, outside this request: {detail}"


def _apply_locked(run: JobRun, cr: ChangeRequest, token: str, started: float) -> dict[str, Any]:
    project = cr.project
    repo = governed_repo(project)
    proposal = Proposal.from_json(cr.proposal)
    scope = [(str(k[0]), str(k[1])) for k in cr.plan.get("scope", [])]
    job_run_progress(run=run, done=0, total=3, message="checking the registry has not changed since the plan")
    from catalog.services.planning import current_fingerprint

    fingerprint = current_fingerprint(repo, project.name, scope)
    if fingerprint != cr.base_fingerprint:
        reason = _stale_reason(cr, repo, scope)
        change_request_apply_finished(
            cr=cr,
            status=CR.STALE,
            result={"error": reason, "fingerprint": fingerprint},
            revision=int(run.params["revision"]),
            stale_reason=reason,
        )
        audit_record(actor=None, action="change_request.stale", obj=cr, after={"reason": reason}, job_run_id=run.pk)
        notify("change_request.failed", f"CR-{cr.pk} is stale: {cr.title}", {"project": project.name, "reason": reason})
        job_run_log(run=run, line=reason)
        raise JobFailed(f"CR-{cr.pk} is stale: {reason}; re-plan and re-approve it", {"stale": True})
    source = f"change-request:{cr.pk}"
    ExpectedChange.objects.bulk_create(
        [
            ExpectedChange(
                project_name=project.name,
                kind=key[0],
                name=key[1],
                content_hash="" if key in proposal.deletes else gateway.content_hash(proposal.upserts[key]),
                source=source,
                change_request=cr,
            )
            for key in sorted(proposal.keys)
        ]
    )
    job_run_progress(run=run, done=1, total=3, message=f"applying {len(proposal.keys)} objects with Feast")
    job_run_log(
        run=run,
        line=f"applying {len(proposal.upserts)} upserts, {len(proposal.deletes)} deletions to {project.name}",
    )
    try:
        gateway.apply_protos(repo, project.name, list(proposal.upserts.values()), list(proposal.deletes.values()))
    except Exception as exc:  # anything Feast raises: report what the registry holds now
        logger.exception("apply of CR-%s failed", cr.pk)
        return _settle_after_error(run, cr, proposal, repo, exc)
    apply_seconds = time.monotonic() - started
    try:
        applied, not_applied = _what_registry_holds(repo, project.name, proposal)
    except PortalError as exc:  # the write committed (all of it): only the read-back failed
        logger.warning("CR-%s applied, but reading it back failed: %s", cr.pk, exc)
        applied, not_applied = [f"{k[0]}:{k[1]}" for k in sorted(proposal.keys)], []
        job_run_log(run=run, line=f"applied; reading the registry back failed: {exc}")
    job_run_progress(run=run, done=2, total=3, message="queueing the catalog sync")
    # The catalog catches up in its own sync job (a full read of a 10k-view registry takes seconds); its
    # sync consumes the ExpectedChange rows above, so the new versions link to this request, in-band.
    sync_job = _catalog_sync(cr, run.started_by)
    result = {
        "registry": FULLY_APPLIED,
        "applied": applied,
        "not_applied": not_applied,
        "apply_seconds": round(apply_seconds, 3),
        "catalog_sync_job": sync_job,
    }
    change_request_apply_finished(cr=cr, status=CR.APPLIED, result=result, revision=int(run.params["revision"]))
    audit_record(
        actor=None,
        action="change_request.applied",
        obj=cr,
        after={"applied": applied, "apply_seconds": result["apply_seconds"]},
        job_run_id=run.pk,
    )
    notify(
        "change_request.applied",
        f"CR-{cr.pk} applied: {cr.title}",
        {"project": project.name, "objects": ", ".join(applied)[:500], "severity": cr.severity},
    )
    job_run_progress(run=run, done=3, total=3, message="applied")
    return result


def _settle_after_error(
    run: JobRun, cr: ChangeRequest, proposal: Proposal, repo: gateway.RepoRef, exc: Exception
) -> dict[str, Any]:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    try:
        holds = _registry_outcome(repo, cr, proposal)
    except PortalError as read_error:
        holds = {"applied": [], "not_applied": [], "registry_unreadable": str(read_error)}
    result = {"error": error, **holds}
    if _settle(cr, result, job_run_id=run.pk):
        return result  # the write committed before the error: the request is applied, and so is the job
    raise JobFailed(error, result) from exc


def _registry_outcome(repo: gateway.RepoRef, cr: ChangeRequest, proposal: Proposal) -> dict[str, Any]:
    """What the registry holds of the request: per object (applied / not applied) and as a whole
    (unchanged since the plan, fully applied, or neither: changed by someone else)."""
    from catalog.services.planning import current_fingerprint

    applied, not_applied = _what_registry_holds(repo, cr.project.name, proposal)
    if not not_applied:
        state = FULLY_APPLIED
    else:
        scope = [(str(k[0]), str(k[1])) for k in cr.plan.get("scope", [])]
        unchanged = current_fingerprint(repo, cr.project.name, scope) == cr.base_fingerprint
        state = UNCHANGED if unchanged else "changed outside this request"
    return {"registry": state, "applied": applied, "not_applied": not_applied}


def _settle(cr: ChangeRequest, result: dict[str, Any], *, job_run_id: int | None) -> bool:
    """Finish an apply that ended without a clean result (an error, or a dead worker) from what the registry
    holds: fully applied means the write committed, so the request is applied (True); anything else is failed.
    `result` gains the catalog sync's job id when applied."""
    apply_run = JobRun.objects.select_related("started_by").filter(pk=job_run_id).first() if job_run_id else None
    revision = int(apply_run.params.get("revision", cr.revision)) if apply_run else cr.revision
    if result.get("registry") == FULLY_APPLIED:
        result["catalog_sync_job"] = _catalog_sync(cr, apply_run.started_by if apply_run else None)
        if not change_request_apply_finished(cr=cr, status=CR.APPLIED, result=result, revision=revision):
            return True
        audit_record(actor=None, action="change_request.applied", obj=cr, after=result, job_run_id=job_run_id)
        notify(
            "change_request.applied",
            f"CR-{cr.pk} applied: {cr.title}",
            {"project": cr.project.name, "objects": ", ".join(result["applied"])[:500], "severity": cr.severity},
        )
        return True
    # Nothing this request wrote is in the registry (the write is all or nothing), so no later change to these
    # objects may be credited to it: the sync must flag them out-of-band.
    if not change_request_apply_finished(cr=cr, status=CR.FAILED, result=result, revision=revision):
        return False
    ExpectedChange.objects.filter(change_request=cr, consumed_at__isnull=True).delete()
    audit_record(actor=None, action="change_request.apply_failed", obj=cr, after=result, job_run_id=job_run_id)
    notify(
        "change_request.failed",
        f"CR-{cr.pk} failed to apply: {cr.title}",
        {
            "project": cr.project.name,
            "error": str(result.get("error", ""))[:500],
            "registry": str(result.get("registry", "unknown")),
        },
    )
    return False


def _catalog_sync(cr: ChangeRequest, actor: Any) -> int | None:
    """Queue a sync of the request's project, attributed to whoever applied it (the operator who started the
    apply; nobody, i.e. the portal, for an auto-apply), never to the request's author; its id (None when the
    broker refused it: the beat's next scheduled sync links the versions instead)."""
    from jobs.services.core import registry_sync_start

    try:
        return registry_sync_start(actor=actor, project=cr.project.name, trigger="apply", force=True).pk
    except PortalError as exc:  # pragma: no cover - queueing only writes a row
        logger.warning("could not queue the catalog sync after CR-%s: %s", cr.pk, exc)
        return None


def change_requests_sweep() -> int:
    """Requests left applying by a dead apply worker (their job was failed by the sweeper) are settled from
    what the registry holds: applied if the write committed, else failed, with what was and was not written."""
    stuck = ChangeRequest.objects.filter(status=CR.APPLYING, apply_job_id__isnull=False).select_related("project")
    settled = 0
    for cr in stuck:
        job = JobRun.objects.filter(pk=int(cr.apply_job_id or 0)).values_list("status", flat=True).first()
        if job not in JobRun.TERMINAL:
            continue
        proposal = Proposal.from_json(cr.proposal)
        error = "the apply job ended without finishing (its worker died)"
        try:
            holds = _registry_outcome(governed_repo(cr.project), cr, proposal)
        except RegistryUnavailable as exc:  # say what was written once the registry answers: the next sweep
            logger.warning("CR-%s: its apply worker died and the registry is unreachable: %s", cr.pk, exc)
            continue
        except PortalError as exc:
            holds = {"applied": [], "not_applied": [], "registry_unreadable": str(exc)}
        _settle(cr, {"error": error, **holds}, job_run_id=cr.apply_job_id)
        settled += 1
    return settled
