"""The change-request workflow: propose (edits or an uploaded repo), submit, approve, reject, withdraw,
comment, override, and the approval rules.

States: draft → submitted → approved | rejected → applying → applied | failed; any open request can
become stale (the registry changed under its plan) or be withdrawn. Every transition is a conditional
UPDATE on (status, revision), so two people acting at once cannot both win, and approvals count only for
the revision they were given on. The apply itself is a job (jobs.services.apply).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.edits import validated_edits
from catalog.exceptions import DuplicateObject, InvalidInput, NotPermitted, ObjectNotFound, PortalError
from catalog.models import (
    Approval,
    ChangeRequest,
    ChangeRequestComment,
    ChangeRequestObject,
    ObjectVersion,
    Project,
    Status,
    Team,
)
from catalog.notifications import notify
from catalog.permissions import has_role
from catalog.services.audit import audit_record
from catalog.services.planning import Plan, Proposal, plan_proposal, proposal_from_edits, proposal_from_objects

CR = ChangeRequest.Status
Progress = Callable[[str], None]  # told each step of a slow propose ("parsing the upload in the sandbox", ...)


def _quiet(message: str) -> None:
    """No one follows this propose's steps (a web request that waits for its answer)."""


class TransitionConflict(PortalError):
    """The request is no longer in a state that allows this action (someone else acted first)."""

    status_code = 409
    code = "conflict"


# --- Permissions -------------------------------------------------------------------------------------------


def can_propose(user: Any) -> bool:
    return has_role(user, "proposer")


def can_approve(user: Any, cr: ChangeRequest) -> bool:
    """Approvers (and above) may approve or reject, never their own request (four eyes)."""
    return has_role(user, "approver") and user.pk != cr.author_id


def can_apply(user: Any) -> bool:
    return has_role(user, "operator")


def can_edit(user: Any, cr: ChangeRequest) -> bool:
    return (user.pk == cr.author_id and can_propose(user)) or has_role(user, "admin")


# --- Helpers -----------------------------------------------------------------------------------------------


def prepare_upload() -> None:
    """Someone is about to upload: start the upload sandbox's template process now, if it is not running."""
    gateway.warm_upload_sandbox()


def governed_repo(project: Project) -> gateway.RepoRef:
    """The governed repo of a project; read-only projects (no governed YAML) cannot take changes."""
    if project.status == Status.REMOVED:
        raise InvalidInput(f"project {project.name!r} was removed from the registry")
    repo = gateway.project_repos().get(project.name)
    if repo is not None:
        return repo
    raise InvalidInput(
        f"project {project.name!r} is read-only here: no governed feature_store YAML (FEAST_REPO_PATH) names it"
    )


def _project(name: str) -> Project:
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise ObjectNotFound(f"project {name!r} does not exist")
    return project


def _new_request_target(*, actor: Any, project: str, title: str, description: str) -> tuple[Project, str]:
    """Who may propose, the title and description, the project: (the project, the stripped title)."""
    if not can_propose(actor):
        raise NotPermitted("Proposing a change needs the proposer role or above.")
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise InvalidInput("a title of 1 to 200 characters is required", {"title": ["required"]})
    if len(description or "") > 20000:
        raise InvalidInput("the description is longer than 20,000 characters", {"description": ["too long"]})
    return _project(project), title


def _check_mode(mode: str) -> None:
    if mode not in ChangeRequest.Mode.values:
        raise InvalidInput(f"mode must be one of {', '.join(ChangeRequest.Mode.values)}", {"mode": ["invalid"]})


def _snapshot(cr: ChangeRequest) -> dict[str, Any]:
    snapshot = {
        "status": cr.status,
        "revision": cr.revision,
        "severity": cr.severity,
        "title": cr.title,
        "summary": cr.plan.get("summary", {}),
        "base_fingerprint": cr.base_fingerprint,
    }
    if cr.external_repo:
        snapshot["external"] = {"repo": cr.external_repo, "branch": cr.external_branch, "sha": cr.external_sha}
    return snapshot


def _notify(cr: ChangeRequest, event: str, text: str, **fields: Any) -> None:
    transaction.on_commit(
        lambda: notify(
            f"change_request.{event}",
            f"CR-{cr.pk} {text}: {cr.title}",
            {"project": cr.project.name, "severity": cr.severity, "status": cr.status, **fields},
        )
    )


def _transition(cr: ChangeRequest, from_states: Sequence[str], to: str, **fields: Any) -> None:
    """Move the request from one of `from_states` to `to` at its current revision, or raise."""
    now = timezone.now()
    updated = ChangeRequest.objects.filter(pk=cr.pk, status__in=list(from_states), revision=cr.revision).update(
        status=to, updated_at=now, **fields
    )
    if not updated:
        fresh = ChangeRequest.objects.filter(pk=cr.pk).values_list("status", "revision").first()
        state = f"{fresh[0]} (revision {fresh[1]})" if fresh else "deleted"
        raise TransitionConflict(f"CR-{cr.pk} is {state} now; it cannot become {to}")
    cr.status = to
    for key, value in fields.items():
        setattr(cr, key, value)


def _store_plan(cr: ChangeRequest, plan: Plan, *, source_data: Mapping[str, Any]) -> None:
    cr.proposal = {**plan.proposal.to_json(), **source_data}
    cr.plan = plan.diff
    cr.severity = plan.severity
    cr.base_fingerprint = plan.base_fingerprint
    cr.required_approvals = plan.required_approvals
    cr.required_teams = plan.required_teams
    cr.planned_at = timezone.now()


def _index_plan(cr: ChangeRequest) -> None:
    """The objects the (saved) request's plan touches, as rows object pages query (ChangeRequestObject)."""
    ChangeRequestObject.objects.filter(change_request=cr).delete()
    touched = {(str(o["kind"]), str(o["name"])) for o in cr.plan.get("objects", [])}
    ChangeRequestObject.objects.bulk_create(
        [ChangeRequestObject(change_request=cr, kind=kind, name=name) for kind, name in sorted(touched)]
    )


def _source_objects(data: Mapping[str, Any]) -> list[gateway.ObjectProto]:
    return list(Proposal.from_json({"upserts": data.get("uploaded", [])}).upserts.values())


def _changes_made_since(
    cr: ChangeRequest, repo: gateway.RepoRef, objects: Sequence[gateway.ObjectProto]
) -> tuple[list[gateway.ObjectProto], list[str]]:
    """An upload re-planned against today's registry. An object its plan did not change (the author did not
    touch it) is taken as the registry has it now, not as the upload's older copy: re-planning never reverts a
    change applied since, by another request or outside the portal. Such a change is named in a warning."""
    planned = {(o["kind"], o["name"]) for o in cr.plan.get("objects", [])}
    unplanned = [o.key for o in objects if o.key not in planned]
    current = gateway.project_protos(repo, cr.project.name, unplanned) if unplanned else {}
    since: dict[tuple[str, str], ObjectVersion] = {}
    for recorded in (
        ObjectVersion.objects.filter(object__project=cr.project, recorded_at__gt=cr.planned_at or cr.created_at)
        .select_related("object")
        .order_by("version")
    ):
        since[(recorded.object.kind, recorded.object.name)] = recorded
    kept: list[gateway.ObjectProto] = []
    warnings: list[str] = []
    for obj in objects:
        if obj.key in planned:
            kept.append(obj)
            continue
        now = current.get(obj.key)
        version = since.get(obj.key)
        label = f"{obj.kind.replace('_', ' ')} '{obj.name}'"
        by = ""
        if version is not None:
            by = f" (by CR-{version.change_request_id})" if version.change_request_id else " (outside the portal)"
        if now is None:
            warnings.append(
                f"{label} was deleted from the registry after this request was planned{by}; the upload's copy is "
                "left out (upload again to re-create it)"
            )
            continue
        kept.append(now)
        if version is not None:
            warnings.append(
                f"{label} changed in the registry after this request was planned{by}; it is kept as the registry "
                "has it now, not reverted to the upload's older copy (upload again to change it)"
            )
    return kept, warnings


def _build(
    project: Project,
    *,
    edits: Sequence[Mapping[str, Any]] | None,
    upload: tuple[bytes, str] | None,
    mode: str,
    uploaded: Sequence[gateway.ObjectProto] | None = None,
    warnings: Sequence[str] = (),
    progress: Progress = _quiet,
) -> tuple[Plan, dict[str, Any]]:
    """Build and plan a proposal from edits, an upload (parsed in the sandbox) or stored uploaded objects."""
    repo = governed_repo(project)
    _check_mode(mode)
    if (edits is None) == (upload is None and uploaded is None):
        raise InvalidInput("give either edits or an archive", {"edits": ["edits or archive"]})
    if edits is not None:
        if mode != ChangeRequest.Mode.PARTIAL:
            raise InvalidInput("edits are always partial: use mode 'partial'", {"mode": ["invalid"]})
        edits = validated_edits(edits)  # the typed schema (catalog/edits.py); the gateway checks the registry
        proposal = proposal_from_edits(repo, project, edits)
        return plan_proposal(repo, project, proposal), {"edits": list(edits)}
    source_data: dict[str, Any] = {}
    notes = list(warnings)
    if upload is not None:
        data, filename = upload
        progress("parsing the upload in the sandbox")
        parsed = gateway.parse_upload(data, filename=filename, project=project.name, repo_path=Path(repo.path))
        objects = [gateway.ObjectProto(o.kind, o.proto_type, o.name, o.proto) for o in parsed.objects]
        notes += parsed.warnings
        source_data = {
            "archive": {"name": filename[:255], "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)},
            "files": list(parsed.files),
        }
    else:
        objects = list(uploaded or [])
    if not objects:
        raise InvalidInput("the definitions declare no Feast objects")
    proposal = proposal_from_objects(repo, project, objects, mode=mode)
    proposal.warnings = notes
    source_data["uploaded"] = Proposal(upserts={o.key: o for o in objects}).to_json()["upserts"]
    progress("planning against the registry")
    return plan_proposal(repo, project, proposal), source_data


def change_request_upload_check(
    *,
    actor: Any,
    upload: tuple[bytes, str],
    project: str = "",
    title: str = "",
    description: str = "",
    mode: str | None = None,
    cr: ChangeRequest | None = None,
) -> None:
    """The quick checks of an upload, made before a worker parses and plans it (jobs.services.planning): who
    may propose (or revise `cr`), the title, a governed project, the mode and the archive's headers and members.
    Raises what `change_request_create` / `change_request_revise` would raise for them; stores nothing."""
    if cr is not None:
        if not can_edit(actor, cr):
            raise NotPermitted("Only the author (or an admin) can change a request.")
        if cr.status not in ChangeRequest.EDITABLE:
            raise TransitionConflict(f"CR-{cr.pk} is {cr.status}; it can no longer change")
        target = cr.project
    else:
        target, _ = _new_request_target(actor=actor, project=project, title=title, description=description)
    governed_repo(target)
    if mode:
        _check_mode(mode)
    data, filename = upload
    gateway.check_upload_archive(data, filename=filename)


# --- Creating and changing requests -----------------------------------------------------------------------------


def change_request_create(
    *,
    actor: Any,
    project: str,
    title: str,
    description: str = "",
    edits: Sequence[Mapping[str, Any]] | None = None,
    upload: tuple[bytes, str] | None = None,
    mode: str = ChangeRequest.Mode.PARTIAL,
    submit: bool = False,
    external: ExternalRef | None = None,
    progress: Progress = _quiet,
) -> ChangeRequest:
    """Propose a change (edits or an uploaded repo), plan it against the live registry, store the protos.

    Invalid input raises InvalidInput (or UploadRejected) before anything is stored. CI proposes through
    `change_request_propose_for_ref`, which passes the branch's `external` reference. `progress` is told each
    slow step (the plan job shows them).
    """
    target, title = _new_request_target(actor=actor, project=project, title=title, description=description)
    plan, source_data = _build(target, edits=edits, upload=upload, mode=mode, progress=progress)
    with transaction.atomic():
        cr = ChangeRequest(
            project=target,
            title=title,
            description=description or "",
            author=actor,
            source=ChangeRequest.Source.EDIT if edits is not None else ChangeRequest.Source.UPLOAD,
            mode=mode,
        )
        if external is not None:
            cr.external_repo, cr.external_branch, cr.external_sha = external.repo, external.branch, external.sha
        _store_plan(cr, plan, source_data=source_data)
        cr.save()
        _index_plan(cr)
        audit_record(actor=actor, action="change_request.created", obj=cr, after=_snapshot(cr))
        if submit:
            change_request_submit(cr=cr, actor=actor)
    return cr


def change_request_revise(
    *,
    cr: ChangeRequest,
    actor: Any,
    edits: Sequence[Mapping[str, Any]] | None = None,
    upload: tuple[bytes, str] | None = None,
    mode: str | None = None,
    external_sha: str = "",
    progress: Progress = _quiet,
) -> ChangeRequest:
    """Replace the proposal (new edits or upload) or, with neither, re-plan it against today's registry.

    Either way the revision goes up and earlier approvals stop counting; a submitted, approved, stale,
    rejected or failed request goes back to submitted. `external_sha`: the commit CI planned it from.
    """
    if not can_edit(actor, cr):
        raise NotPermitted("Only the author (or an admin) can change a request.")
    if cr.status not in ChangeRequest.EDITABLE:
        raise TransitionConflict(f"CR-{cr.pk} is {cr.status}; it can no longer change")
    mode = mode or cr.mode
    if edits is None and upload is None:  # re-plan what was proposed
        if cr.source == ChangeRequest.Source.EDIT:
            plan, source_data = _build(cr.project, edits=cr.proposal.get("edits", []), upload=None, mode=mode)
        else:
            uploaded, warnings = _changes_made_since(cr, governed_repo(cr.project), _source_objects(cr.proposal))
            plan, source_data = _build(
                cr.project, edits=None, upload=None, mode=mode, uploaded=uploaded, warnings=warnings
            )
            source_data = {**{k: cr.proposal[k] for k in ("archive", "files") if k in cr.proposal}, **source_data}
    else:
        plan, source_data = _build(cr.project, edits=edits, upload=upload, mode=mode, progress=progress)
    with transaction.atomic():
        locked = ChangeRequest.objects.select_for_update().get(pk=cr.pk)
        if locked.status not in ChangeRequest.EDITABLE or locked.revision != cr.revision:
            raise TransitionConflict(f"CR-{cr.pk} changed meanwhile ({locked.status}, revision {locked.revision})")
        before = _snapshot(locked)
        _store_plan(locked, plan, source_data=source_data)
        locked.mode = mode
        if edits is not None:
            locked.source = ChangeRequest.Source.EDIT
        elif upload is not None:
            locked.source = ChangeRequest.Source.UPLOAD
        locked.revision += 1
        if locked.status != CR.DRAFT:
            locked.status = CR.SUBMITTED
            locked.submitted_at = timezone.now()
        locked.stale_reason = ""
        locked.decided_at = None
        locked.apply_result = {}
        if external_sha:
            locked.external_sha = external_sha
        locked.save()
        _index_plan(locked)
        audit_record(actor=actor, action="change_request.revised", obj=locked, before=before, after=_snapshot(locked))
    return locked


@dataclass(frozen=True)
class ExternalRef:
    """Where CI proposed a request from: a git repository's branch, and the commit."""

    repo: str
    branch: str
    sha: str = ""

    def __str__(self) -> str:
        return f"{self.repo}@{self.branch}"


def change_request_for_ref(*, project: Project, ref: ExternalRef) -> ChangeRequest | None:
    """The branch's live request (not applied or withdrawn), the one its CI runs revise; None if it has none."""
    return (
        ChangeRequest.objects.select_related("project", "author")
        .filter(
            project=project,
            external_repo=ref.repo,
            external_branch=ref.branch,
            status__in=ChangeRequest.BRANCH_LIVE,
        )
        .first()
    )


def change_request_propose_for_ref(
    *,
    actor: Any,
    project: str,
    ref: ExternalRef,
    title: str,
    description: str = "",
    edits: Sequence[Mapping[str, Any]] | None = None,
    upload: tuple[bytes, str] | None = None,
    mode: str | None = None,
    submit: bool = False,
    progress: Progress = _quiet,
) -> tuple[ChangeRequest, str]:
    """CI's propose, idempotent per branch: (the request, "created" | "revised" | "unchanged").

    The branch's live request gets a new revision through `change_request_revise` (approvals of older
    revisions stop counting, as for any revision), or is opened with `change_request_create` when the branch
    has none. Plan input identical to the current revision's (a byte-identical archive, or the same edits, in
    the same mode) adds no revision: its approvals stand and only the commit is recorded; a stale or failed
    request is re-planned instead. An upload that changes nothing raises NothingToChange, as it does anywhere.
    """
    if not ref.repo or not ref.branch:
        raise InvalidInput("an external reference needs a repository and a branch", {"external_repo": ["required"]})
    if not can_propose(actor):
        raise NotPermitted("Proposing a change needs the proposer role or above.")
    live = change_request_for_ref(project=_project(project), ref=ref)
    if live is None:
        try:
            created = change_request_create(
                actor=actor,
                project=project,
                title=title,
                description=description,
                edits=edits,
                upload=upload,
                mode=mode or ChangeRequest.Mode.PARTIAL,
                submit=submit,
                external=ref,
                progress=progress,
            )
        except IntegrityError:  # catalog_cr_one_live_per_branch: another run opened it first
            raise DuplicateObject(
                f"another run opened the change request for {ref} meanwhile; run again to revise it"
            ) from None
        return created, "created"
    if not can_edit(actor, live):
        raise NotPermitted(
            f"CR-{live.pk} for {ref} was opened by {live.author.get_username()}; only its author or an admin can "
            "revise it"
        )
    if live.status == CR.APPLYING:
        raise TransitionConflict(f"CR-{live.pk} for {ref} is being applied; run again once it has finished")
    mode = mode or live.mode
    if _same_plan_input(live, edits=edits, upload=upload, mode=mode) and live.status not in (CR.STALE, CR.FAILED):
        if ref.sha and ref.sha != live.external_sha:
            with transaction.atomic():
                ChangeRequest.objects.filter(pk=live.pk, revision=live.revision).update(
                    external_sha=ref.sha, updated_at=timezone.now()
                )
                audit_record(
                    actor=actor,
                    action="change_request.commit_recorded",
                    obj=live,
                    before={"external_sha": live.external_sha},
                    after={"external_sha": ref.sha, "revision": live.revision, "plan_input": "unchanged"},
                )
            live.external_sha = ref.sha
        if submit and live.status == CR.DRAFT:
            change_request_submit(cr=live, actor=actor)
        return live, "unchanged"
    revised = change_request_revise(
        cr=live, actor=actor, edits=edits, upload=upload, mode=mode, external_sha=ref.sha, progress=progress
    )
    if submit and revised.status == CR.DRAFT:
        change_request_submit(cr=revised, actor=actor)
    return revised, "revised"


def _same_plan_input(
    cr: ChangeRequest, *, edits: Sequence[Mapping[str, Any]] | None, upload: tuple[bytes, str] | None, mode: str
) -> bool:
    """Would this proposal re-plan exactly what the request's current revision was planned from?"""
    if mode != cr.mode:
        return False
    if upload is not None:
        planned = cr.proposal.get("archive", {}).get("sha256")
        return cr.source == ChangeRequest.Source.UPLOAD and planned == hashlib.sha256(upload[0]).hexdigest()
    if edits is None or cr.source != ChangeRequest.Source.EDIT:
        return False
    stored: Any = cr.proposal.get("edits")
    return bool(validated_edits(edits) == stored)  # compared as stored: cleaned by their schemas


def change_request_submit(*, cr: ChangeRequest, actor: Any) -> ChangeRequest:
    """Draft → submitted: reviewers see it and approvals start counting."""
    if not can_edit(actor, cr):
        raise NotPermitted("Only the author (or an admin) can submit a request.")
    with transaction.atomic():
        _transition(cr, [CR.DRAFT], CR.SUBMITTED, submitted_at=timezone.now())
        audit_record(actor=actor, action="change_request.submitted", obj=cr, after=_snapshot(cr))
        _notify(cr, "submitted", "submitted for review", author=actor.get_username(), url=cr.get_absolute_url())
    return cr


def change_request_withdraw(*, cr: ChangeRequest, actor: Any) -> ChangeRequest:
    if not can_edit(actor, cr):
        raise NotPermitted("Only the author (or an admin) can withdraw a request.")
    with transaction.atomic():
        before = _snapshot(cr)
        _transition(cr, [CR.DRAFT, CR.SUBMITTED, CR.APPROVED, CR.STALE, CR.REJECTED, CR.FAILED], CR.WITHDRAWN)
        audit_record(actor=actor, action="change_request.withdrawn", obj=cr, before=before, after=_snapshot(cr))
    return cr


def change_request_comment(*, cr: ChangeRequest, actor: Any, body: str) -> ChangeRequestComment:
    if not has_role(actor, "viewer"):
        raise NotPermitted("Commenting needs a portal role.")
    body = (body or "").strip()
    if not body or len(body) > 10000:
        raise InvalidInput("a comment of 1 to 10,000 characters is required", {"body": ["required"]})
    with transaction.atomic():
        comment = ChangeRequestComment.objects.create(change_request=cr, author=actor, body=body)
        audit_record(
            actor=actor,
            action="change_request.commented",
            obj=cr,
            after={"comment_id": comment.pk, "body": body[:1000]},
        )
    return comment


# --- Approvals ---------------------------------------------------------------------------------------------------


def approval_status(cr: ChangeRequest) -> dict[str, Any]:
    """What the current revision has and still needs: approvals, team sign-offs, overrides."""
    every = list(cr.approvals.select_related("user", "override_team"))
    rows = [a for a in every if a.revision == cr.revision]
    approvals = [a for a in rows if a.decision == Approval.Decision.APPROVE]
    overrides = {a.override_team_id: a for a in rows if a.decision == Approval.Decision.OVERRIDE}
    team_ids = [t["id"] for t in cr.required_teams]
    members: dict[int, set[int]] = {tid: set() for tid in team_ids}
    for team_id, user_id in Team.members.through.objects.filter(team_id__in=team_ids).values_list("team_id", "user_id"):
        members[team_id].add(user_id)
    teams = []
    for team in cr.required_teams:
        by = [a.user.get_username() for a in approvals if a.user_id in members.get(team["id"], set())]
        override = overrides.get(team["id"])
        teams.append(
            {
                **team,
                "approved_by": by,
                "override": (
                    {"by": override.user.get_username(), "reason": override.comment, "at": override.created_at}
                    if override
                    else None
                ),
                "satisfied": bool(by or override),
            }
        )
    missing = []
    if len(approvals) < cr.required_approvals:
        missing.append(
            f"{cr.required_approvals - len(approvals)} more approval(s) "
            f"({cr.required_approvals} needed{' for a breaking change' if cr.required_approvals > 1 else ''})"
        )
    missing += [f"an approval from a member of {t['name']}" for t in teams if not t["satisfied"]]
    return {
        "revision": cr.revision,
        "required_approvals": cr.required_approvals,
        "signoffs": _signoffs(teams, len(approvals), cr.required_approvals),
        "approvals": [
            {"user": a.user.get_username(), "comment": a.comment, "at": a.created_at, "teams": a.teams}
            for a in approvals
        ],
        "teams": teams,
        "missing": missing,
        "satisfied": not missing,
        # decisions on earlier revisions: shown, never counted (a new revision resets approvals)
        "superseded": [
            {"user": a.user.get_username(), "decision": a.decision, "revision": a.revision, "at": a.created_at}
            for a in every
            if a.revision < cr.revision
        ],
    }


def _signoffs(teams: list[dict[str, Any]], approvals: int, required: int) -> dict[str, Any]:
    """What the approval rules add up to, as people count it: one sign-off per owner team, plus any approvals
    the request needs beyond those (a breaking change needs two); each slot named and marked when given."""
    slots = [{"label": t["name"], "team": True, "satisfied": t["satisfied"]} for t in teams]
    extra = max(0, required - len(teams))
    spare = max(0, approvals - sum(1 for t in teams if t["approved_by"]))  # approvals no team slot used
    slots += [
        {"label": "any approver" if not teams else "another approver", "team": False, "satisfied": i < spare}
        for i in range(extra)
    ]
    return {"given": sum(1 for s in slots if s["satisfied"]), "needed": len(slots), "slots": slots}


def _locked(cr: ChangeRequest) -> ChangeRequest:
    fresh = ChangeRequest.objects.select_for_update().select_related("project", "author").filter(pk=cr.pk).first()
    if fresh is None:
        raise ObjectNotFound(f"CR-{cr.pk} does not exist")
    return fresh


def _check_revision(cr: ChangeRequest, revision: int | None) -> None:
    if revision is not None and revision != cr.revision:
        raise TransitionConflict(
            f"CR-{cr.pk} was re-planned (revision {cr.revision}); review the new plan before approving"
        )


def change_request_approve(
    *, cr: ChangeRequest, actor: Any, comment: str = "", revision: int | None = None
) -> ChangeRequest:
    """Record an approval; the request becomes approved once every rule is met (race-free)."""
    if actor.pk == cr.author_id:
        raise NotPermitted("You cannot approve your own change request (four-eyes rule).")
    if not can_approve(actor, cr):
        raise NotPermitted("Approving needs the approver role or above.")
    with transaction.atomic():
        # The row lock serialises approvals of one request: two approvers at once both count, once each.
        cr = _locked(cr)
        _check_revision(cr, revision)
        mine = Approval.objects.filter(change_request=cr, revision=cr.revision, user=actor, decision="approve")
        if mine.exists():
            raise DuplicateObject(f"you already approved revision {cr.revision} of CR-{cr.pk}")
        if cr.status != CR.SUBMITTED:
            raise TransitionConflict(f"CR-{cr.pk} is {cr.status}; only submitted requests take approvals")
        user_teams = set(actor.teams.values_list("id", flat=True))
        counted = [t["name"] for t in cr.required_teams if t["id"] in user_teams]
        try:
            with transaction.atomic():
                Approval.objects.create(
                    change_request=cr,
                    revision=cr.revision,
                    user=actor,
                    decision=Approval.Decision.APPROVE,
                    comment=(comment or "")[:10000],
                    teams=counted,
                )
        except IntegrityError:
            raise DuplicateObject(f"you already approved revision {cr.revision} of CR-{cr.pk}") from None
        audit_record(
            actor=actor,
            action="change_request.approved",
            obj=cr,
            after={"revision": cr.revision, "comment": comment[:1000], "teams": counted},
        )
        missing = _approve_if_satisfied(cr, actor, "approved")
        if missing:
            _notify(cr, "approval", "got an approval", by=actor.get_username(), missing="; ".join(missing))
    return cr


def _approve_if_satisfied(cr: ChangeRequest, actor: Any, text: str) -> list[str]:
    """Submitted → approved once every rule is met (inside the caller's transaction); what is still missing."""
    status = approval_status(cr)
    if not status["satisfied"]:
        return list(status["missing"])
    _transition(cr, [CR.SUBMITTED], CR.APPROVED, decided_at=timezone.now())
    audit_record(actor=None, action="change_request.fully_approved", obj=cr, after=_snapshot(cr))
    _notify(cr, "approved", text, by=actor.get_username())
    return []


def change_request_apply_begin(*, cr: ChangeRequest, queue_job: Callable[[ChangeRequest], int]) -> int:
    """Approved → applying. Locks the request, checks that it is approved, lets `queue_job(locked)` create the
    apply job in the same transaction (the jobs app: catalog never imports it) and records the job; the job
    id. The job applies the revision it was queued with and ends through `change_request_apply_finished`."""
    with transaction.atomic():
        locked = ChangeRequest.objects.select_for_update().select_related("project").get(pk=cr.pk)
        if locked.status != CR.APPROVED:
            missing = approval_status(locked)["missing"] if locked.status == CR.SUBMITTED else []
            raise TransitionConflict(
                f"CR-{locked.pk} is {locked.status}; only approved requests can be applied"
                + (f" (still needs {'; '.join(missing)})" if missing else "")
            )
        job_id = queue_job(locked)
        updated = ChangeRequest.objects.filter(pk=locked.pk, status=CR.APPROVED, revision=locked.revision).update(
            status=CR.APPLYING, apply_job_id=job_id, updated_at=timezone.now()
        )
        if not updated:  # pragma: no cover - the row lock makes this unreachable
            raise TransitionConflict(f"CR-{locked.pk} changed while starting the apply")
    cr.status, cr.apply_job_id = CR.APPLYING, job_id
    return job_id


def change_request_auto_apply_not_started(*, cr: ChangeRequest, reason: str) -> None:
    """An auto-apply project's approved request whose apply could not be started: said on the request (while
    it is still approved, an operator can apply it by hand), in the audit log and to the webhook."""
    error = f"auto-apply did not start: {reason}"[:2000]
    ChangeRequest.objects.filter(pk=cr.pk, status=CR.APPROVED).update(
        apply_result={"error": error, "registry": "unchanged", "applied": [], "not_applied": cr.plan_keys()},
        updated_at=timezone.now(),
    )
    audit_record(actor=None, action="change_request.auto_apply_not_started", obj=cr, after={"error": error})
    notify("change_request.failed", f"CR-{cr.pk} {error}", {"project": cr.project.name, "title": cr.title})


def change_request_apply_finished(
    *, cr: ChangeRequest, status: str, result: dict[str, Any], revision: int, stale_reason: str = ""
) -> bool:
    """The apply job's end, the only way out of applying: back to approved (another apply held the project's
    lock), applied, failed or stale, with what the job found. A conditional UPDATE on the status *and* the
    revision the job applied: False (nothing changed) when the request moved on meanwhile, e.g. a sweeper
    or another worker finished it first."""
    if status not in (CR.APPROVED, CR.APPLIED, CR.FAILED, CR.STALE):
        raise ValueError(f"an apply cannot end in {status!r}")
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "apply_result": result, "updated_at": now}
    if status == CR.APPLIED:
        fields["applied_at"] = now
    if stale_reason:
        fields["stale_reason"] = stale_reason
    moved = ChangeRequest.objects.filter(pk=cr.pk, status=CR.APPLYING, revision=revision).update(**fields)
    cr.refresh_from_db()
    return bool(moved)


def change_request_reject(*, cr: ChangeRequest, actor: Any, comment: str, revision: int | None = None) -> ChangeRequest:
    """Reject with a (required) comment."""
    if actor.pk == cr.author_id:
        raise NotPermitted("You cannot reject your own change request: withdraw it instead.")
    if not can_approve(actor, cr):
        raise NotPermitted("Rejecting needs the approver role or above.")
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput("a rejection needs a comment saying why", {"comment": ["required"]})
    with transaction.atomic():
        cr = _locked(cr)
        _check_revision(cr, revision)
        before = _snapshot(cr)
        _transition(cr, [CR.SUBMITTED, CR.APPROVED], CR.REJECTED, decided_at=timezone.now())
        Approval.objects.create(
            change_request=cr, revision=cr.revision, user=actor, decision=Approval.Decision.REJECT, comment=comment
        )
        audit_record(
            actor=actor,
            action="change_request.rejected",
            obj=cr,
            before=before,
            after={**_snapshot(cr), "comment": comment[:1000]},
        )
        _notify(cr, "rejected", "rejected", by=actor.get_username(), comment=comment[:500])
    return cr


def change_request_override(*, cr: ChangeRequest, actor: Any, team: str, reason: str) -> ChangeRequest:
    """An admin signs off for a required team that cannot approve, with a written reason (recorded, shown)."""
    if not has_role(actor, "admin"):
        raise NotPermitted("Only an admin can override a team approval.")
    if actor.pk == cr.author_id:
        raise NotPermitted("You cannot override approvals on your own change request.")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise InvalidInput("an override needs a written reason (at least 10 characters)", {"reason": ["required"]})
    with transaction.atomic():
        cr = _locked(cr)
        if cr.status != CR.SUBMITTED:
            raise TransitionConflict(f"CR-{cr.pk} is {cr.status}; overrides apply to submitted requests")
        required = {t["name"]: t["id"] for t in cr.required_teams}
        if team not in required:
            raise InvalidInput(f"{team!r} is not a team this request needs ({', '.join(required) or 'none'})")
        try:
            with transaction.atomic():
                Approval.objects.create(
                    change_request=cr,
                    revision=cr.revision,
                    user=actor,
                    decision=Approval.Decision.OVERRIDE,
                    override_team_id=required[team],
                    comment=reason,
                )
        except IntegrityError:
            raise DuplicateObject(f"{team} is already overridden on revision {cr.revision}") from None
        audit_record(
            actor=actor,
            action="change_request.team_overridden",
            obj=cr,
            after={"team": team, "reason": reason, "revision": cr.revision},
        )
        _approve_if_satisfied(cr, actor, "approved (with an admin override)")
    return cr
