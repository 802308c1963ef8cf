"""Online preview: validate in the web tier (catalog only), read the online store in a worker.

The web tier needs no online-store credentials: it checks the request against the catalog, creates
the JobRun and waits on that row; the worker calls Feast's get_online_features through the gateway.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.jsonvalues import json_value
from catalog.models import CatalogObject, Feature, LineageEdge, Project, ServiceFeature
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_view_catalog
from jobs.models import JobRun
from jobs.services.core import job_run_queue
from jobs.services.materialization import reject_nul

MAX_ENTITIES = 1000


def _active(qs: Any) -> Any:
    return qs.exclude(status=CatalogStatus.REMOVED)


def project_objects_for_selection(*, project: str, feature_service: str | None, features: Any) -> Any:
    """The project's present catalog objects, once the project exists and exactly one of a feature service
    or a feature list was given (previews and training datasets select features the same way)."""
    if not Project.objects.filter(name=project).exclude(status=CatalogStatus.REMOVED).exists():
        raise ObjectNotFound(f"project {project} is not in the catalog")
    if bool(feature_service) == bool(features):
        raise InvalidInput(
            "give either feature_service or features", {"feature_service": ["give feature_service or features"]}
        )
    return _active(CatalogObject.objects.filter(project__name=project))


def _views_needing(view: CatalogObject, seen: set[int]) -> list[CatalogObject]:
    """A view plus, for on-demand views, the views they read (recursively)."""
    if view.pk in seen:
        return []
    seen.add(view.pk)
    out = [view]
    edges = (
        LineageEdge.objects.filter(downstream=view, kind=LineageEdge.Kind.VIEW_VIEW)
        .select_related("upstream")
        .only("upstream", "upstream__id", "upstream__name", "upstream__entity_names")
    )
    for edge in edges:
        out.extend(_views_needing(edge.upstream, seen))
    return out


def _request_fields(views: list[CatalogObject]) -> dict[str, str]:
    """Request-data fields the on-demand views need, with their dtypes."""
    sources = LineageEdge.objects.filter(downstream__in=views, kind=LineageEdge.Kind.REQUEST_VIEW).values_list(
        "upstream_id", flat=True
    )
    return dict(Feature.objects.filter(view_id__in=list(sources)).values_list("name", "dtype"))


def _coerce(key: str, value_type: str, values: list[Any]) -> list[Any]:
    """Values of a join key or request field in the type Feast expects; a clear 400 when one does not fit."""
    kind = value_type.upper()
    out: list[Any] = []
    for v in values:
        try:
            if "INT" in kind:
                if isinstance(v, float) and not v.is_integer():
                    raise ValueError
                out.append(int(v))
            elif "FLOAT" in kind or "DOUBLE" in kind:
                out.append(float(v))
            elif "STRING" in kind:
                out.append(str(v))
            else:
                out.append(v)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"entities.{key}: {v!r} is not a valid {value_type} value",
                {"entities": [f"{key}: expected {value_type} values"]},
            ) from None
    return out


def preview_params(
    *,
    project: str,
    feature_service: str | None,
    features: list[str] | None,
    entities: Any,
) -> dict[str, Any]:
    """Check a preview request against the catalog; the JobRun params. Bad input raises, changes nothing."""
    reject_nul(project=project, feature_service=feature_service, features=features, entities=entities)
    objects = project_objects_for_selection(project=project, feature_service=feature_service, features=features)
    # only the columns validation needs: a view's spec JSON is large and read on every preview
    view_rows: dict[str, CatalogObject] = {
        v.name: v for v in objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW).only("id", "name", "entity_names")
    }
    involved: list[CatalogObject] = []
    if feature_service:
        service = objects.filter(kind=CatalogObject.Kind.FEATURE_SERVICE, name=feature_service).only("id").first()
        if service is None:
            raise InvalidInput(
                f"feature service {feature_service} is not in project {project}",
                {"feature_service": [f"unknown feature service {feature_service}"]},
            )
        names = set(ServiceFeature.objects.filter(service=service).values_list("view_name", flat=True))
        involved = [view_rows[n] for n in names if n in view_rows]
    else:
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features) or len(features) > 500:
            raise InvalidInput("features must be a list of 'view:feature' strings", {"features": ["list of strings"]})
        for ref in features:
            view_name, sep, feature = ref.partition(":")
            if not sep or not feature:
                raise InvalidInput(f"{ref!r} is not 'view:feature'", {"features": [f"{ref}: not view:feature"]})
            view = view_rows.get(view_name)
            if view is None:
                raise InvalidInput(f"unknown feature view {view_name}", {"features": [f"{ref}: unknown view"]})
            if not Feature.objects.filter(view=view, name=feature).exclude(status=CatalogStatus.REMOVED).exists():
                raise InvalidInput(f"{view_name} has no feature {feature}", {"features": [f"{ref}: unknown feature"]})
            if view not in involved:
                involved.append(view)
    seen: set[int] = set()
    needed = [v for view in involved for v in _views_needing(view, seen)]
    entity_names = {name for v in needed for name in v.entity_names}
    types: dict[str, str] = {}
    for entity in objects.filter(kind=CatalogObject.Kind.ENTITY, name__in=entity_names).only("join_keys", "value_type"):
        types.update(dict.fromkeys(entity.join_keys, entity.value_type))
    request_fields = _request_fields(needed)
    types.update(request_fields)
    allowed = set(types)
    if not allowed and entities in (None, {}):
        entities = {}  # only entity-less views (Feast's __dummy entity): no key to give, one row to read
    elif not isinstance(entities, dict) or not entities:
        raise InvalidInput("entities must map join keys to lists of values", {"entities": ["an object of lists"]})
    unknown = sorted(set(entities) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown entity key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed)) or 'none'}",
            {"entities": [f"unknown key {k}" for k in unknown]},
        )
    missing = sorted(allowed - set(entities))
    if missing:
        described = [f"request field {k}" if k in request_fields else f"entity key {k}" for k in missing]
        raise InvalidInput(f"missing {', '.join(described)}", {"entities": [f"missing {k}" for k in missing]})
    lengths = set()
    for key, values in entities.items():
        if not isinstance(values, list) or not values:
            raise InvalidInput(f"entities.{key} must be a non-empty list", {"entities": [f"{key}: non-empty list"]})
        if not all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in values):
            raise InvalidInput(f"entities.{key} holds a non-scalar value", {"entities": [f"{key}: scalars only"]})
        lengths.add(len(values))
        entities[key] = _coerce(key, types[key], values)
    if entities and len(lengths) != 1:
        raise InvalidInput("every entity list must have the same length", {"entities": ["lists differ in length"]})
    if max(lengths, default=1) > MAX_ENTITIES:
        raise InvalidInput(f"at most {MAX_ENTITIES} entities per preview", {"entities": [f"max {MAX_ENTITIES}"]})
    return {
        "project": project,
        "feature_service": feature_service or None,
        "features": list(features) if features else None,
        "entities": entities,
    }


@transaction.atomic
def online_preview_start(
    *,
    actor: Any,
    project: str,
    feature_service: str | None = None,
    features: list[str] | None = None,
    entities: Any = None,
    trigger: str,
) -> JobRun:
    """Queue an online preview: validate, create the JobRun, enqueue on commit. `trigger` says where it was
    started ("button" in the browser, "api")."""
    from jobs.tasks import online_preview_task

    if not can_view_catalog(actor):
        raise NotPermitted("you hold no portal role")
    params = preview_params(project=project, feature_service=feature_service, features=features, entities=entities)
    return job_run_queue(
        kind=JobRun.Kind.PREVIEW,
        params=params,
        actor=actor,
        trigger=trigger,
        action="online_preview.started",
        task=online_preview_task,
        audit_after={k: params[k] for k in params if k != "entities"},
    )


def job_run_wait(*, run: JobRun, timeout: float) -> JobRun:
    """Poll the JobRun row until it is terminal or `timeout` seconds passed (the API's short wait)."""
    deadline = time.monotonic() + timeout
    delay = 0.004  # a one-entity preview takes a few milliseconds in the worker: poll finely at first
    while True:
        status = JobRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if status in JobRun.TERMINAL or time.monotonic() >= deadline:
            run.refresh_from_db()
            return run
        time.sleep(delay)
        delay = min(delay * 1.3, 0.1)


def online_preview_run(run: JobRun) -> dict[str, Any]:
    """The worker side: read online values via Feast, in canonical order, with age against TTL."""
    params = run.params
    project = params["project"]
    repo = next((r for r in gateway.governed_repos() if gateway.registry_location(r).project == project), None)
    if repo is None:
        raise ObjectNotFound(f"no governed Feast repo holds project {project}")
    entities: dict[str, list[Any]] = params["entities"]
    count = len(next(iter(entities.values()))) if entities else 1  # entity-less: one row
    entity_rows = [{k: v[i] for k, v in entities.items()} for i in range(count)]
    read = gateway.online_preview(
        repo, entity_rows=entity_rows, feature_service=params.get("feature_service"), features=params.get("features")
    )
    ttls = dict(
        CatalogObject.objects.filter(project__name=project, kind=CatalogObject.Kind.FEATURE_VIEW).values_list(
            "name", "ttl_seconds"
        )
    )
    now = timezone.now()
    results = []
    for entity_row, values in zip(entity_rows, read.rows, strict=True):
        out = []
        for v in values:
            ttl = ttls.get(v.feature_view)
            age = (now - v.event_timestamp).total_seconds() if v.event_timestamp else None
            out.append(
                {
                    "index": v.index,
                    "feature": v.reference,
                    "value": json_value(v.value),
                    "status": v.status,
                    "event_timestamp": v.event_timestamp.isoformat() if v.event_timestamp else None,
                    "age_seconds": round(age, 3) if age is not None else None,
                    "ttl_seconds": ttl,
                    # a TTL of 0 is Feast's "no expiry": a value is always within it
                    "within_ttl": None if age is None or ttl is None else (ttl == 0 or age <= ttl),
                }
            )
        results.append({"entity": entity_row, "values": out})
    return {
        "project": project,
        "feature_service": params.get("feature_service"),
        "vector": [{"index": e.index, "feature": e.reference, "dtype": e.dtype} for e in read.vector],
        "results": results,
        "feast_response_order": read.response_order,
    }


def feature_server_curl(*, params: dict[str, Any], base_url: str = "http://localhost:6566") -> str:
    """The equivalent request to Feast's feature server (`feast serve`) `/get-online-features`."""
    import json

    body: dict[str, Any] = {"entities": params.get("entities") or {}}
    if params.get("feature_service"):
        body["feature_service"] = params["feature_service"]
    else:
        body["features"] = params.get("features") or []
    body["full_feature_names"] = True
    return (
        f"curl -s -X POST {base_url}/get-online-features \\\n"
        f"  -H 'Content-Type: application/json' \\\n  -d '{json.dumps(body)}'"
    )


def preview_wait_seconds() -> float:
    """How long the API waits for a preview's worker before answering 202."""
    return float(settings.PORTAL_PREVIEW_WAIT_SECONDS)
