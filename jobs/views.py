"""HTML views that start or show background jobs: list, detail (live progress), materialize, preview,
a view's ledger and the freshness panel."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from catalog.decorators import domain_errors_as_http, reader_required
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound, PortalError
from catalog.freshness import feature_view_freshness
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_operate
from jobs.api.serializers import progress_percent
from jobs.kinds import JOB_KINDS
from jobs.models import JobRun
from jobs.selectors import (
    job_run_get,
    job_run_list,
    job_run_result,
    latest_feature_statistics,
    online_views,
    view_ledger,
)
from jobs.services.preview import feature_server_curl
from jobs.views_planning import plan_retry_url


@login_required
@require_POST
def job_start(request: HttpRequest, kind: str) -> HttpResponse:
    """Every page's "start a job" button: the kind's own start (permission, validation, JobRun, enqueue), found
    in jobs/kinds.py like the API's. Success opens the run; a refusal goes back to the form's page with why."""
    spec = JOB_KINDS.get(kind)
    if spec is None or spec.start is None:
        raise Http404(f"No job kind {kind!r} is started from a page.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = ""
    try:
        run = spec.start_from_input(actor=request.user, trigger="button", data=spec.inputs_from_form(request.POST))
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from None
    except PortalError as exc:
        messages.error(request, f"Not started: {exc}")
        return redirect(back or "jobs:job_list")
    messages.success(request, f"{spec.label[0].upper()}{spec.label[1:]} is queued (job #{run.pk}).")
    return redirect("jobs:job_detail", pk=run.pk)


@login_required
@domain_errors_as_http
def job_list(request: HttpRequest) -> HttpResponse:
    """Job runs, newest first, filtered like the API's list (jobs.filters.JobRunFilter), a page at a time;
    the materialization form for operators."""
    names = ("kind", "status", "project", "started_by", "trigger", "since", "until")
    filters = {k: request.GET.get(k, "").strip() for k in names}
    try:
        runs = job_run_list(user=request.user, params={k: v for k, v in filters.items() if v})
    except InvalidInput as exc:
        messages.error(request, str(exc))
        runs = JobRun.objects.none()
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    context = {
        "runs": page.object_list,
        "page": page,
        "query": request.GET.copy(),
        "filters": filters,
        "kinds": JobRun.Kind.choices,
        "statuses": JobRun.Status.choices,
        "can_operate": can_operate(request.user),
        "views": online_views(user=request.user),
    }
    return render(request, "jobs/job_list.html", context)


def _detail_context(run: JobRun, user: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "run": run,
        "percent": progress_percent(run),
        "result": job_run_result(user=user, run=run),  # what the user may see of it (feature values)
    }
    if run.kind == JobRun.Kind.MATERIALIZE:
        context["records"] = run.materializations.order_by("id")
    if run.kind == JobRun.Kind.PREVIEW:
        context["curl"] = feature_server_curl(params=run.params)
    if run.kind == JobRun.Kind.PLAN:
        context["retry_url"] = plan_retry_url(run)
    return context


@login_required
@domain_errors_as_http
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One job: live progress bar (htmx polls the status partial until the run is terminal), log, result."""
    run = job_run_get(user=request.user, pk=pk)
    return render(request, "jobs/job_detail.html", _detail_context(run, request.user))


@login_required
@domain_errors_as_http
def job_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status partial polled by the detail page (no polling attribute once terminal)."""
    run = job_run_get(user=request.user, pk=pk)
    if run.kind == JobRun.Kind.PLAN and run.status == JobRun.Status.SUCCEEDED and request.headers.get("HX-Request"):
        # the upload's page was following its plan: go on to the change request it stored
        return HttpResponse(headers={"HX-Redirect": str(run.result.get("url") or "")})
    return render(request, "jobs/partials/_job_status.html", _detail_context(run, request.user))


def _preview_choices() -> tuple[list[CatalogObject], list[CatalogObject]]:
    objects = CatalogObject.objects.exclude(status=CatalogStatus.REMOVED).select_related("project")
    services = list(objects.filter(kind=CatalogObject.Kind.FEATURE_SERVICE).order_by("project__name", "name"))
    views = list(
        objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW, online=True)
        .prefetch_related("features")
        .order_by("project__name", "name")
    )
    return services, views


@login_required
@domain_errors_as_http
def preview(request: HttpRequest) -> HttpResponse:
    """The online-preview form: pick a service or a view, enter entity keys; the worker reads online."""
    services, views = _preview_choices()
    form = {"target": request.POST.get("target", ""), "entities": request.POST.get("entities", "")}
    error = ""
    if request.method == "POST":
        target = form["target"]
        kind, _, ref = target.partition(":")
        project, _, name = ref.partition("/")
        entities, error = _parse_entities(form["entities"])
        if not error:
            try:
                inputs: dict[str, Any] = {"project": project, "entities": entities}
                if kind == "service":
                    inputs["feature_service"] = name
                elif kind == "view":
                    view = next((v for v in views if v.project.name == project and v.name == name), None)
                    if view is None:
                        raise ObjectNotFound(f"feature view {project}/{name} does not exist")
                    inputs["features"] = [
                        f"{name}:{f.name}" for f in view.features.all() if f.status != CatalogStatus.REMOVED
                    ]
                else:
                    raise ObjectNotFound("pick a feature service or a feature view")
                preview_kind = JOB_KINDS[JobRun.Kind.PREVIEW]
                run = preview_kind.start_from_input(actor=request.user, trigger="button", data=inputs)
                return redirect("jobs:job_detail", pk=run.pk)
            except (PortalError, ObjectNotFound) as exc:
                error = str(exc)
    status = 400 if error else 200
    return render(
        request,
        "jobs/preview.html",
        {"services": services, "views": views, "form": form, "error": error},
        status=status,
    )


def _parse_entities(text: str) -> tuple[dict[str, Any], str]:
    """`employee_id: 101, 202` lines (or a JSON object) → {"employee_id": [101, 202]}."""
    text = text.strip()
    if not text:
        return {}, "enter entity keys, e.g. employee_id: 101, 202"
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            return {}, f"entities are not valid JSON: {exc.msg}"
        return (parsed, "") if isinstance(parsed, dict) else ({}, "entities must be a JSON object")
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, values = line.partition(":")
        if not sep:
            return {}, f"'{line.strip()}' is not 'key: value, value'"
        items = [v.strip() for v in values.split(",") if v.strip()]
        out[key.strip()] = [int(v) if v.lstrip("-").isdigit() else v for v in items]
    return out, ""


@login_required
@domain_errors_as_http
def view_ledger_page(request: HttpRequest, project: str, view: str) -> HttpResponse:
    """A view's materialization ledger: intervals covered, gaps, last success, rows over time (plotly)."""
    ledger = view_ledger(user=request.user, project=project, view=view)
    stats = latest_feature_statistics(user=request.user, project=project, view=view)
    return render(
        request,
        "jobs/view_ledger.html",
        {
            "ledger": ledger,
            "chart": ledger.chart(),
            "can_operate": can_operate(request.user),
            "stats": stats,
            "stats_result": job_run_result(user=request.user, run=stats) if stats else {},
        },
    )


@login_required
@domain_errors_as_http
def freshness_panel(request: HttpRequest) -> HttpResponse:
    """Every online view: fresh / stale / never, and age as a share of TTL (plotly)."""
    rows = [(v, feature_view_freshness(v)) for v in online_views(user=request.user)]
    chart = {
        "views": [f"{v.project.name}/{v.name}" for v, _ in rows],
        "ratio": [round(f.age_ratio, 3) if f.age_ratio is not None else None for _, f in rows],
        "state": [str(f.state) for _, f in rows],
    }
    return render(request, "jobs/freshness.html", {"rows": rows, "chart": chart})


@reader_required
@require_POST
def change_request_decide(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve or override from the change request's page (catalog's action), then, explicitly, start the apply
    when that completed the approval of an auto-apply project's request."""
    from catalog.views_governance import DECISIONS, change_request_act
    from jobs.services.apply import change_request_auto_apply

    if action not in DECISIONS:
        raise Http404("Unknown action.")
    return change_request_act(request, pk, action, decided=change_request_auto_apply)


@login_required
@require_POST
def change_request_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Start the apply job of an approved change request (operators)."""
    from catalog.models import ChangeRequest
    from jobs.services.apply import change_request_apply_start

    cr = ChangeRequest.objects.filter(pk=pk).first()
    if cr is None:
        raise Http404(f"No change request CR-{pk}.")
    try:
        run = change_request_apply_start(cr=cr, actor=request.user)
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Apply queued (job #{run.pk}); this page updates when it finishes.")
    return redirect(cr.get_absolute_url())
