"""HTML views that start or show background jobs: list, detail (live progress), materialize, preview,
a view's ledger and the freshness panel."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog.decorators import domain_errors_as_http
from catalog.exceptions import ObjectNotFound, PortalError
from catalog.freshness import feature_view_freshness
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_operate
from jobs.api.serializers import progress_percent
from jobs.models import JobRun
from jobs.selectors import (
    job_run_get,
    job_run_list,
    job_run_result,
    latest_feature_statistics,
    online_views,
    view_ledger,
)
from jobs.services import registry_sync_start
from jobs.services.materialization import materialization_start
from jobs.services.preview import feature_server_curl, online_preview_start
from jobs.services.skew import skew_check_start
from jobs.services.stats import feature_statistics_start


@login_required
@require_POST
def sync_now(request: HttpRequest) -> HttpResponse:
    """Queue a registry sync (operators)."""
    if not can_operate(request.user):
        raise PermissionDenied
    run = registry_sync_start(actor=request.user, trigger="button", force=True)
    messages.success(request, f"Registry sync queued (job #{run.pk}).")
    return redirect("catalog:home")


@login_required
@domain_errors_as_http
def job_list(request: HttpRequest) -> HttpResponse:
    """Recent job runs, filterable by kind and status; the materialization form for operators."""
    kind = request.GET.get("kind") or None
    status = request.GET.get("status") or None
    if kind not in (None, *JobRun.Kind.values) or status not in (None, *JobRun.Status.values):
        kind = status = None
    runs = job_run_list(user=request.user, kind=kind, status=status)[:100]
    context = {
        "runs": runs,
        "kinds": JobRun.Kind.choices,
        "statuses": JobRun.Status.choices,
        "kind": kind or "",
        "status": status or "",
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
    return render(request, "jobs/partials/_job_status.html", _detail_context(run, request.user))


@login_required
@require_POST
def materialize(request: HttpRequest) -> HttpResponse:
    """Start a materialization from the browser (operators)."""
    if not can_operate(request.user):
        raise PermissionDenied
    selected = request.POST.getlist("views")
    project = request.POST.get("project") or None
    views: list[str] = []
    for item in selected:  # "project/view" values from the picker
        p, _, v = item.partition("/")
        if project and p != project:
            messages.error(request, "Pick views of one project at a time.")
            return redirect("jobs:job_list")
        project, views = p, [*views, v]
    mode = request.POST.get("mode") or "incremental"
    try:
        run = materialization_start(
            actor=request.user,
            project=project,
            views=views or None,
            mode=mode,
            start=request.POST.get("start") or None,
            end=request.POST.get("end") or None,
            trigger="button",
        )
    except PortalError as exc:
        messages.error(request, f"Not started: {exc}")
        return redirect("jobs:job_list")
    messages.success(request, f"Materialization queued (job #{run.pk}).")
    return redirect("jobs:job_detail", pk=run.pk)


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
                if kind == "service":
                    run = online_preview_start(
                        actor=request.user, project=project, feature_service=name, entities=entities, trigger="button"
                    )
                elif kind == "view":
                    view = next((v for v in views if v.project.name == project and v.name == name), None)
                    if view is None:
                        raise ObjectNotFound(f"feature view {project}/{name} does not exist")
                    features = [f"{name}:{f.name}" for f in view.features.all() if f.status != CatalogStatus.REMOVED]
                    run = online_preview_start(
                        actor=request.user, project=project, features=features, entities=entities, trigger="button"
                    )
                else:
                    raise ObjectNotFound("pick a feature service or a feature view")
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


@login_required
@require_POST
def skew_check(request: HttpRequest, project: str, view: str) -> HttpResponse:
    """Start an offline/online skew check of one view (operators)."""
    if not can_operate(request.user):
        raise PermissionDenied
    try:
        sample = int(request.POST.get("sample") or 100)
        run = skew_check_start(actor=request.user, project=project, view=view, sample=sample, trigger="button")
    except (PortalError, ValueError) as exc:
        messages.error(request, f"Not started: {exc}")
        return redirect("jobs:view_ledger", project=project, view=view)
    return redirect("jobs:job_detail", pk=run.pk)


@login_required
@require_POST
def feature_statistics(request: HttpRequest, project: str, view: str) -> HttpResponse:
    """Start a feature-statistics job for one view (operators)."""
    if not can_operate(request.user):
        raise PermissionDenied
    try:
        run = feature_statistics_start(actor=request.user, project=project, view=view, trigger="button")
    except PortalError as exc:
        messages.error(request, f"Not started: {exc}")
        return redirect("jobs:view_ledger", project=project, view=view)
    return redirect("jobs:job_detail", pk=run.pk)


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
