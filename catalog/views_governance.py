"""Governance pages: change requests (list, upload, edit forms on object pages, detail with the plan and
actions) and the audit log. Views parse input, call a service, render; rules live in the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog import selectors
from catalog.decorators import reader_required
from catalog.exceptions import InvalidInput, PortalError
from catalog.models import AuditEvent, CatalogObject, ChangeRequest, Project
from catalog.permissions import has_role
from catalog.proposal_drafts import proposal_draft_keep
from catalog.services import change_requests as crs

PER_PAGE = 25
DTYPES = [
    "Int32",
    "Int64",
    "Float32",
    "Float64",
    "String",
    "Bool",
    "Bytes",
    "UnixTimestamp",
    "Array(Int64)",
    "Array(Float32)",
    "Array(Float64)",
    "Array(String)",
]


def _page(request: HttpRequest, items: Any) -> Any:
    try:
        number = max(1, int(request.GET.get("page") or 1))
    except ValueError:
        number = 1
    return Paginator(items, PER_PAGE).get_page(number)


def _cr(pk: int) -> ChangeRequest:
    cr = ChangeRequest.objects.select_related("project", "author").filter(pk=pk).first()
    if cr is None:
        raise Http404(f"No change request CR-{pk}.")
    return cr


@reader_required
def change_request_list(request: HttpRequest) -> HttpResponse:
    """Change requests with the API's filters (catalog.filters.ChangeRequestFilter): status (open by default;
    "all" for every status), project, severity, author, mine."""
    status = request.GET.get("status", "open")
    params = {k: v for k, v in request.GET.items() if v and k not in ("page", "status")}
    if status != "all":
        params["status"] = status
    try:
        rows = selectors.change_request_list(user=request.user, params=params)
    except InvalidInput as exc:
        messages.error(request, str(exc))
        rows = ChangeRequest.objects.none()
    context = {
        "page": _page(request, rows),
        "status": status,
        "statuses": ChangeRequest.Status.choices,
        "projects": Project.objects.exclude(repo_key="").values_list("name", flat=True),
        "can_propose": crs.can_propose(request.user),
        "query": request.GET.copy(),
    }
    return render(request, "catalog/change_request_list.html", context)


UPLOAD_FIELDS = ("project", "title", "description", "mode")


@reader_required
@require_GET
def change_request_new(request: HttpRequest) -> HttpResponse:
    """The upload form (a zip or tar of a feature repo): the browser path CI uses via the API. It posts to
    jobs.views_planning.change_request_upload, which queues the plan job; a retry comes back here with the
    form's fields (`?title=...`) filled in."""
    if not crs.can_propose(request.user):
        raise PermissionDenied("Proposing a change needs the proposer role or above.")
    crs.prepare_upload()
    values = {k: request.GET.get(k, "") for k in UPLOAD_FIELDS}
    return change_request_new_page(request, values=values)


def change_request_new_page(request: HttpRequest, *, values: dict[str, str], error: str = "") -> HttpResponse:
    """The upload form with `values` filled in, and `error` when the upload was refused (400)."""
    projects = list(Project.objects.exclude(repo_key="").exclude(status="removed").values_list("name", flat=True))
    values = {**values, "mode": values.get("mode") or "partial"}
    if not values.get("project") and len(projects) == 1:
        values["project"] = projects[0]
    return render(
        request,
        "catalog/change_request_new.html",
        {"projects": projects, "values": values, "error": error, "modes": ChangeRequest.Mode.choices},
        status=400 if error else 200,
    )


def _edit_from_form(obj: CatalogObject, data: Any) -> dict[str, Any]:
    """One edit (the JSON the API takes) from an object page's form."""
    op = data.get("op", "")
    base = {"op": op}
    if op in {"change_dtype", "add_field", "remove_field", "set_ttl"}:
        base["view"] = obj.name
    if op in {"change_dtype", "add_field", "remove_field"}:
        base["field"] = data.get("field", "")
    if op in {"change_dtype", "add_field"}:
        base["dtype"] = data.get("dtype", "")
    if op == "add_field":
        base["description"] = data.get("description", "")
    if op == "set_ttl":
        try:
            base["ttl_seconds"] = int(float(data.get("ttl_days", "")) * 86400)
        except ValueError:
            base["ttl_seconds"] = -1
    if op in {"set_metadata", "deprecate"}:
        base.update({"kind": obj.kind, "name": obj.name})
    if op == "deprecate":
        base["reason"] = data.get("reason", "")
    if op == "set_metadata":
        base["description"] = data.get("description", "")
        base["owner"] = data.get("owner", "")
        tags: dict[str, str] = {}
        for line in data.get("tags", "").splitlines():
            if line.strip():
                key, _, value = line.partition("=")
                tags[key.strip()] = value.strip()
        base["tags"] = tags
    if op == "remove_from_service":
        view, _, feature = data.get("reference", "").partition(":")
        base.update({"service": obj.name, "view": view, "feature": feature})
    return base


@reader_required
@require_POST
def change_request_propose(request: HttpRequest, project: str, kind_slug: str, name: str) -> HttpResponse:
    """An edit form on an object page: builds the proposed protos from the registry's, plans, redirects."""
    kind = selectors.KIND_SLUGS.get(kind_slug)
    if kind is None:
        raise Http404("Unknown kind of object.")
    try:
        obj = selectors.object_get(user=request.user, project=project, kind=kind, name=name)
    except CatalogObject.DoesNotExist:
        raise Http404(f"No such object {name!r} in {project!r}.") from None
    edit = _edit_from_form(obj, request.POST)
    title = request.POST.get("title", "").strip() or f"{edit['op'].replace('_', ' ')} on {obj.name}"
    try:
        cr = crs.change_request_create(
            actor=request.user,
            project=project,
            title=title,
            description=request.POST.get("cr_description", ""),
            edits=[edit],
            submit=bool(request.POST.get("submit")),
        )
    except PortalError as exc:
        messages.error(request, f"Nothing was proposed: {exc}")
        proposal_draft_keep(request, obj, str(exc))  # the form comes back as typed (issue 18)
        return redirect(obj.get_absolute_url() + "#propose")
    messages.success(request, f"CR-{cr.pk} created ({cr.get_status_display().lower()}): review its plan below.")
    return redirect(cr.get_absolute_url())


@reader_required
def change_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan (classified, field-level), impact, approvals, actions, discussion and history."""
    cr = _cr(pk)
    user = request.user
    status = crs.approval_status(cr)
    approved_by_me = any(a["user"] == user.get_username() for a in status["approvals"])
    context = {
        "cr": cr,
        "plan": cr.plan,
        "approval": status,
        "comments": cr.comments.select_related("author"),
        "decisions": cr.approvals.select_related("user", "override_team").order_by("-created_at"),
        "history": AuditEvent.objects.filter(object_type="changerequest", object_id=str(cr.pk)).order_by("created_at"),
        "is_author": user.pk == cr.author_id,
        "can_review": crs.can_approve(user, cr) and cr.status == ChangeRequest.Status.SUBMITTED,
        "approved_by_me": approved_by_me,
        "can_edit": crs.can_edit(user, cr) and cr.status in ChangeRequest.EDITABLE,
        "can_submit": crs.can_edit(user, cr) and cr.status == ChangeRequest.Status.DRAFT,
        "can_withdraw": crs.can_edit(user, cr) and cr.status in ChangeRequest.EDITABLE,
        "can_apply": crs.can_apply(user) and cr.status == ChangeRequest.Status.APPROVED,
        "can_override": has_role(user, "admin") and user.pk != cr.author_id and cr.status == "submitted",
        "can_comment": has_role(user, "viewer"),
        "apply_job": cr.apply_job_id,
        "modes": ChangeRequest.Mode.choices,
    }
    return render(request, "catalog/change_request_detail.html", context)


# An upload of a new revision posts to jobs.views_planning.change_request_upload_revision (a plan job).
_ACTIONS = {"submit", "approve", "reject", "withdraw", "comment", "override", "replan"}
DECISIONS = frozenset({"approve", "override"})  # their page route is jobs.views.change_request_decide


@reader_required
@require_POST
def change_request_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One workflow action from the detail page; the services enforce every rule. Approvals and overrides are
    posted to jobs.views.change_request_decide, which may start an auto-apply after them."""
    if action not in _ACTIONS - DECISIONS:
        raise Http404("Unknown action.")
    return change_request_act(request, pk, action)


def change_request_act(
    request: HttpRequest, pk: int, action: str, *, decided: Callable[[ChangeRequest], ChangeRequest] | None = None
) -> HttpResponse:
    """The detail page's action `action`, then `decided` (when given) after an approval or override."""
    cr = _cr(pk)
    data = request.POST
    revision = int(data["revision"]) if data.get("revision", "").isdigit() else None
    if action in ("approve", "reject") and revision is None and crs.can_approve(request.user, cr):
        messages.error(request, "Nothing recorded: the form did not say which revision you reviewed; reload the page.")
        return redirect(cr.get_absolute_url())
    try:
        if action == "submit":
            crs.change_request_submit(cr=cr, actor=request.user)
            text = "Submitted for review."
        elif action == "approve":
            cr = crs.change_request_approve(
                cr=cr, actor=request.user, comment=data.get("comment", ""), revision=revision
            )
            cr = decided(cr) if decided else cr
            text = {
                "approved": "Approved: the request is ready to apply.",
                "applying": "Approved: the project applies approved requests itself; the apply has started.",
            }.get(cr.status, "Your approval is recorded.")
        elif action == "reject":
            crs.change_request_reject(cr=cr, actor=request.user, comment=data.get("comment", ""), revision=revision)
            text = "Rejected."
        elif action == "withdraw":
            crs.change_request_withdraw(cr=cr, actor=request.user)
            text = "Withdrawn."
        elif action == "override":
            cr = crs.change_request_override(
                cr=cr, actor=request.user, team=data.get("team", ""), reason=data.get("reason", "")
            )
            cr = decided(cr) if decided else cr
            text = "Override recorded."
        elif action == "replan":
            cr = crs.change_request_revise(cr=cr, actor=request.user)
            text = f"Re-planned against today's registry (revision {cr.revision}); approvals start over."
        else:
            crs.change_request_comment(cr=cr, actor=request.user, body=data.get("body", ""))
            text = "Comment added."
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, text)
    return redirect(cr.get_absolute_url())


@reader_required
def audit_list(request: HttpRequest) -> HttpResponse:
    """The append-only audit log, filterable by action, actor, object and date (read-only: no edit path)."""
    names = ("action", "action_prefix", "actor", "object_type", "object_id", "q", "since", "until")
    filters = {k: request.GET.get(k, "").strip() for k in names}
    try:
        rows = selectors.audit_event_list(user=request.user, params={k: v for k, v in filters.items() if v})
    except InvalidInput as exc:
        messages.error(request, str(exc))
        rows = AuditEvent.objects.none()
    context = {
        "page": _page(request, rows),
        "filters": filters,
        "actions": sorted(set(AuditEvent.objects.values_list("action", flat=True).distinct()[:500])),
        "object_types": sorted(set(AuditEvent.objects.values_list("object_type", flat=True).distinct()[:100]) - {""}),
        "query": request.GET.copy(),
    }
    return render(request, "catalog/audit_list.html", context)
