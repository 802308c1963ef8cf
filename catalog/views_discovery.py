"""Discovery pages: search, type-ahead, feature, owner/team, lineage and model pages (thin views)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import search as catalog_search
from catalog import selectors
from catalog.contracts import model_contract
from catalog.decorators import reader_required
from catalog.exceptions import PortalError
from catalog.forms import ModelConsumerForm
from catalog.freshness import feature_view_freshness
from catalog.lineage import lineage_graph
from catalog.models import CatalogObject, ModelConsumer, Project
from catalog.permissions import can_register_model
from catalog.services.consumers import model_consumer_delete, model_consumer_register

PER_PAGE = 20


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


@reader_required
def search(request: HttpRequest) -> HttpResponse:
    """Ranked search with facets, highlighted matches and pagination."""
    q = request.GET.get("q", "").strip()[:200]
    filters = {k: request.GET[k] for k in catalog_search.FACETS if request.GET.get(k)}
    results = catalog_search.search(
        user=request.user, q=q, filters=filters, page=_page_number(request.GET.get("page")), per_page=PER_PAGE
    )
    base = request.GET.copy()
    base.pop("page", None)
    facet_links: list[tuple[str, list[dict[str, Any]]]] = []
    for facet, values in results.facets.items():
        rows = []
        for value, n in values[: catalog_search.FACET_VALUES_SHOWN]:
            link = base.copy()
            selected = filters.get(facet) == value
            if selected:
                link.pop(facet, None)
            else:
                link[facet] = value
            label = catalog_search.KIND_LABELS.get(value, value) if facet == "kind" else value
            rows.append({"value": value, "label": label, "count": n, "selected": selected, "qs": link.urlencode()})
        if rows:
            facet_links.append((facet, rows))
    context = {"q": q, "results": results, "facets": facet_links, "filters": filters, "base_qs": base.urlencode()}
    return render(request, "catalog/search.html", context)


@reader_required
def suggest(request: HttpRequest) -> HttpResponse:
    """Type-ahead suggestions for the header box (an htmx partial)."""
    q = request.GET.get("q", "").strip()[:200]
    hits = catalog_search.suggest(user=request.user, q=q) if len(q) >= 2 else []
    return render(request, "catalog/partials/_suggestions.html", {"q": q, "hits": hits})


@reader_required
def feature_detail(request: HttpRequest, project: str, view: str, name: str) -> HttpResponse:
    """One feature: its view, dtype, position, and who uses it (services, on-demand views)."""
    try:
        feature = selectors.feature_get(user=request.user, project=project, view=view, name=name)
    except CatalogObject.DoesNotExist:
        raise Http404(f"No feature {view}:{name} in {project!r}.") from None
    usage = selectors.feature_usage(user=request.user, feature=feature)
    context = {
        "feature": feature,
        "view": feature.view,
        "usage": usage,
        "freshness": feature_view_freshness(feature.view),
        "removal": selectors.feature_removal(feature=feature) if feature.status == "removed" else None,
    }
    return render(request, "catalog/feature_detail.html", context)


@reader_required
def owner_detail(request: HttpRequest, name: str) -> HttpResponse:
    """What an owner (a Feast owner string) or a team owns, with the team's members and models."""
    owned = selectors.owner_objects(user=request.user, owner=name)
    if not owned["objects"] and owned["team"] is None and not owned["models"]:
        raise Http404(f"Nobody called {name!r} owns anything in the catalog.")
    return render(request, "catalog/owner_detail.html", {"name": name, **owned})


@reader_required
def project_lineage(request: HttpRequest, project: str) -> HttpResponse:
    """The project's lineage graph (plotly), optionally focused on one object."""
    try:
        proj = selectors.project_get(user=request.user, name=project)
    except Project.DoesNotExist:
        raise Http404(f"No project named {project!r}.") from None
    focus = None
    focus_id = request.GET.get("focus", "")
    if focus_id:
        kind, _, name = focus_id.partition(":")
        if kind not in CatalogObject.Kind.values or not name:
            raise Http404(
                f"focus={focus_id!r} names no object: use <kind>:<name>, e.g. feature_view:employee_features "
                f"(kinds: {', '.join(CatalogObject.Kind.values)})."
            )
        try:
            focus = selectors.object_get(user=request.user, project=project, kind=kind, name=name)
        except CatalogObject.DoesNotExist:
            raise Http404(f"No {kind} named {name!r} in {project!r}.") from None
    graph = lineage_graph(user=request.user, project=proj, focus=focus)
    context = {"project": proj, "focus": focus, "graph_json": json.dumps(graph), "graph": graph}
    return render(request, "catalog/lineage.html", context)


@reader_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A registered model: the service it consumes, the vector it pinned and, when that differs, the current one."""
    try:
        consumer = selectors.model_consumer_get(user=request.user, pk=pk)
    except ModelConsumer.DoesNotExist:
        raise Http404("No such registered model.") from None
    contract = model_contract(consumer, list(consumer.service.vector.all()))
    return render(request, "catalog/model_detail.html", {"consumer": consumer, "contract": contract})


@reader_required
def model_register(request: HttpRequest, project: str, name: str) -> HttpResponse:
    """Register a model as a consumer of a feature service (proposers and above)."""
    try:
        service = selectors.object_get(user=request.user, project=project, kind="feature_service", name=name)
    except CatalogObject.DoesNotExist:
        raise Http404(f"No feature service named {name!r} in {project!r}.") from None
    if not can_register_model(request.user):
        raise PermissionDenied("Registering a model needs the proposer role or above.")
    form = ModelConsumerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            consumer = model_consumer_register(actor=request.user, service=service, **form.cleaned_data)
        except PortalError as exc:
            form.add_error(None, str(exc))
            for field, errors in getattr(exc, "details", {}).items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, f"Registered {consumer} as a consumer of {service.name}.")
            return redirect(service.get_absolute_url() + "#consumers")
    return render(request, "catalog/model_register.html", {"service": service, "form": form})


@reader_required
@require_POST
def model_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Unregister a model (its creator, its team, or an admin)."""
    try:
        consumer = selectors.model_consumer_get(user=request.user, pk=pk)
    except ModelConsumer.DoesNotExist:
        raise Http404("No such registered model.") from None
    service = consumer.service
    try:
        model_consumer_delete(actor=request.user, consumer=consumer)
    except PortalError as exc:
        messages.error(request, str(exc))
        return redirect(consumer.get_absolute_url())
    messages.success(request, f"Unregistered {consumer}.")
    return redirect(service.get_absolute_url() + "#consumers")


# --- Browsing without searching: every feature, every model, every team ------------------------------------


FEATURE_SORTS = {"name": "Feature", "view": "View", "project": "Project", "dtype": "Type", "owner": "Owner"}


@reader_required
def feature_index(request: HttpRequest) -> HttpResponse:
    """Every feature across projects: a sortable, filterable table with its view's freshness and its readers."""
    names = ("q", "project", "view", "dtype", "owner", "sort")
    filters = {k: request.GET.get(k, "").strip() for k in names}
    try:
        rows = selectors.feature_index(user=request.user, params={k: v for k, v in filters.items() if v})
    except PortalError as exc:
        messages.error(request, str(exc))
        rows = selectors.feature_index(user=request.user).none()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    freshness = {f.view_id: feature_view_freshness(f.view) for f in page.object_list}
    context = {
        "page": page,
        "rows": [(f, freshness[f.view_id]) for f in page.object_list],
        "filters": filters,
        "query": request.GET.copy(),
        "sorts": FEATURE_SORTS,
        "projects": selectors.project_list(user=request.user),
    }
    return render(request, "catalog/feature_index.html", context)


@reader_required
def model_index(request: HttpRequest) -> HttpResponse:
    """Every registered model: the service it reads, its owner, and whether its pinned contract still holds."""
    consumers = list(selectors.model_consumer_list(user=request.user).order_by("name", "version"))
    vectors: dict[int, list[Any]] = {}
    rows = []
    for consumer in consumers:
        if consumer.service_id not in vectors:
            vectors[consumer.service_id] = list(consumer.service.vector.all())
        rows.append((consumer, model_contract(consumer, vectors[consumer.service_id])))
    return render(request, "catalog/model_index.html", {"rows": rows})


@reader_required
def team_directory(request: HttpRequest) -> HttpResponse:
    """Every owner team: members, what it owns, and the change requests waiting for its sign-off."""
    return render(request, "catalog/team_directory.html", {"teams": selectors.team_directory(user=request.user)})
