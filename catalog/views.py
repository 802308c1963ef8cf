"""HTML views: parse input, call a selector or service, render."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from catalog import selectors
from catalog.models import CatalogObject, ObjectVersion, Project
from catalog.permissions import can_operate


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Dashboard: counts, recent registry changes, recent syncs."""
    context = {
        "counts": selectors.dashboard_counts(user=request.user),
        "changes": selectors.recent_changes(user=request.user),
        "syncs": selectors.sync_run_list(user=request.user, limit=5),
        "can_operate": can_operate(request.user),
    }
    return render(request, "catalog/home.html", context)


@login_required
def project_detail(request: HttpRequest, project: str) -> HttpResponse:
    """A project's objects by kind."""
    try:
        proj = selectors.project_get(user=request.user, name=project)
    except Project.DoesNotExist:
        raise Http404(f"No project named {project!r}.") from None
    grouped = selectors.project_objects(user=request.user, project=proj)
    sections = [(CatalogObject.Kind(kind).label, selectors.SLUG_FOR_KIND[kind], objs) for kind, objs in grouped.items()]
    return render(request, "catalog/project_detail.html", {"project": proj, "sections": sections})


@login_required
def object_detail(request: HttpRequest, project: str, kind_slug: str, name: str) -> HttpResponse:
    """One object: its definition, features or vector, lineage and history (with a diff of two versions)."""
    kind = selectors.KIND_SLUGS.get(kind_slug)
    if kind is None:
        raise Http404("Unknown kind of object.")
    try:
        obj = selectors.object_get(user=request.user, project=project, kind=kind, name=name)
    except CatalogObject.DoesNotExist:
        raise Http404(f"No {CatalogObject.Kind(kind).label.lower()} named {name!r} in {project!r}.") from None
    history = list(selectors.object_history(user=request.user, obj=obj))
    compare: dict[str, object] = {}
    if request.GET.get("from") and request.GET.get("to"):
        try:
            a, b = int(request.GET["from"]), int(request.GET["to"])
            compare = {
                "from": a,
                "to": b,
                "changes": selectors.version_diff(user=request.user, obj=obj, from_version=a, to_version=b),
            }
        except (ValueError, ObjectVersion.DoesNotExist):
            compare = {"error": "Pick two versions this object has."}
    context = {
        "obj": obj,
        "kind_slug": kind_slug,
        "features": obj.features.all() if kind in ("feature_view", "data_source") else [],
        "vector": obj.vector.select_related("view__project").all() if kind == "feature_service" else [],
        "lineage": selectors.object_lineage(user=request.user, obj=obj),
        "history": history,
        "compare": compare,
        "slugs": selectors.SLUG_FOR_KIND,
    }
    return render(request, "catalog/object_detail.html", context)


@login_required
def catalog_as_of(request: HttpRequest) -> HttpResponse:
    """The catalog as it was at a past date and time (UTC)."""
    raw = request.GET.get("at", "")
    when = None
    error = ""
    if raw:
        try:
            when = datetime.fromisoformat(raw)
            if timezone.is_naive(when):
                when = when.replace(tzinfo=UTC)
        except ValueError:
            error = f"{raw!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM."
    objects = list(selectors.catalog_as_of(user=request.user, when=when)[:2000]) if when else []
    context = {"at": raw, "when": when, "error": error, "objects": objects, "slugs": selectors.SLUG_FOR_KIND}
    return render(request, "catalog/catalog_as_of.html", context)
