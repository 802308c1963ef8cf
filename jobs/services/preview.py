"""Online preview: validate in the web tier (catalog only), read the online store in a worker.

The web tier needs no online-store credentials: it checks the request against the catalog, creates
the JobRun and waits on that row; the worker calls Feast's get_online_features through the gateway.
"""

from __future__ import annotations

import logging
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
from catalog.permissions import can_ask_for_feature_values, can_view_catalog
from catalog.selectors import feature_value_team_ids
from jobs.models import JobRun
from jobs.services.core import job_run_queue
from jobs.services.materialization import reject_nul

MAX_ENTITIES = 1000
NOTIFY_TTL_SECONDS = 120  # a finished run's wake-up waits this long for a waiter (then Redis drops it)
WAIT_RECHECK_SECONDS = 1.0

logger = logging.getLogger(__name__)


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


def views_needing(view: CatalogObject, seen: set[int]) -> list[CatalogObject]:
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
        out.extend(views_needing(edge.upstream, seen))
    return out


def request_fields_of(views: list[CatalogObject]) -> dict[str, str]:
    """Request-data fields the on-demand views need, with their dtypes."""
    sources = LineageEdge.objects.filter(downstream__in=views, kind=LineageEdge.Kind.REQUEST_VIEW).values_list(
        "upstream_id", flat=True
    )
    return dict(Feature.objects.filter(view_id__in=list(sources)).values_list("name", "dtype"))


def _live_project_id(project: str) -> int:
    """The project's id; ObjectNotFound when it is not in the catalog (or was removed)."""
    project_id = (
        Project.objects.filter(name=project).exclude(status=CatalogStatus.REMOVED).values_list("id", flat=True).first()
    )
    if project_id is None:
        raise ObjectNotFound(f"project {project} is not in the catalog")
    return int(project_id)


def _views_and_request_fields(views: list[CatalogObject]) -> tuple[list[CatalogObject], dict[str, str]]:
    """The views plus, for on-demand views, the views they read (recursively), and the request-data fields
    they need with their dtypes: what `views_needing` and `request_fields_of` give, in one lineage query
    per level instead of one per view."""
    needed = list(views)
    seen = {v.pk for v in needed}
    sources: set[int] = set()
    frontier = [v.pk for v in needed]
    while frontier:
        edges = LineageEdge.objects.filter(
            downstream_id__in=frontier, kind__in=[LineageEdge.Kind.VIEW_VIEW, LineageEdge.Kind.REQUEST_VIEW]
        ).values_list("kind", "upstream_id")
        upstream_views: set[int] = set()
        for kind, upstream_id in edges:
            if kind == LineageEdge.Kind.REQUEST_VIEW:
                sources.add(upstream_id)
            elif upstream_id not in seen:
                seen.add(upstream_id)
                upstream_views.add(upstream_id)
        frontier = sorted(upstream_views)
        if frontier:
            needed.extend(CatalogObject.objects.filter(pk__in=frontier).only("id", "name", "entity_names"))
    fields = dict(Feature.objects.filter(view_id__in=sources).values_list("name", "dtype")) if sources else {}
    return needed, fields


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
    # Runs on every preview request: a few narrow queries (only the columns validation needs; for a feature
    # service its views in one query; one lineage query per level of on-demand views), not one per view.
    # The error paths run the extra queries that say exactly what is wrong.
    if bool(feature_service) == bool(features):
        _live_project_id(project)
        raise InvalidInput(
            "give either feature_service or features", {"feature_service": ["give feature_service or features"]}
        )
    objects = _active(CatalogObject.objects.filter(project__name=project)).exclude(
        project__status=CatalogStatus.REMOVED
    )
    views = objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW).only("id", "name", "entity_names")
    involved: list[CatalogObject] = []
    if feature_service:
        service = objects.filter(kind=CatalogObject.Kind.FEATURE_SERVICE, name=feature_service)
        names = ServiceFeature.objects.filter(service__in=service).values("view_name")
        involved = list(views.filter(name__in=names))
        if not involved:
            _live_project_id(project)
            if not service.exists():
                raise InvalidInput(
                    f"feature service {feature_service} is not in project {project}",
                    {"feature_service": [f"unknown feature service {feature_service}"]},
                )
    else:
        _live_project_id(project)
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features) or len(features) > 500:
            raise InvalidInput("features must be a list of 'view:feature' strings", {"features": ["list of strings"]})
        refs = [ref.partition(":") for ref in features]
        view_rows = {v.name: v for v in views.filter(name__in={view_name for view_name, _, _ in refs})}
        present = set(
            Feature.objects.filter(view__in=list(view_rows.values()), name__in={f for _, _, f in refs})
            .exclude(status=CatalogStatus.REMOVED)
            .values_list("view_id", "name")
        )
        for ref, (view_name, sep, feature) in zip(features, refs, strict=True):
            if not sep or not feature:
                raise InvalidInput(f"{ref!r} is not 'view:feature'", {"features": [f"{ref}: not view:feature"]})
            view = view_rows.get(view_name)
            if view is None:
                raise InvalidInput(f"unknown feature view {view_name}", {"features": [f"{ref}: unknown view"]})
            if (view.pk, feature) not in present:
                raise InvalidInput(f"{view_name} has no feature {feature}", {"features": [f"{ref}: unknown feature"]})
            if view not in involved:
                involved.append(view)
    needed, request_fields = _views_and_request_fields(involved)
    entity_names = {name for v in needed for name in v.entity_names}
    types: dict[str, str] = {}
    if entity_names:
        for entity in objects.filter(kind=CatalogObject.Kind.ENTITY, name__in=entity_names).only(
            "join_keys", "value_type"
        ):
            types.update(dict.fromkeys(entity.join_keys, entity.value_type))
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
    if not can_view_catalog(actor):
        raise NotPermitted("you hold no portal role")
    params = preview_params(project=project, feature_service=feature_service, features=features, entities=entities)
    views = {str(ref).partition(":")[0] for ref in features or []}
    teams = feature_value_team_ids(project=project, service=feature_service, views=views)
    if not can_ask_for_feature_values(actor, team_ids=teams):
        raise NotPermitted(
            "a preview shows feature values: it needs the proposer role, or membership of a team that owns "
            f"{'feature service ' + feature_service if feature_service else 'these views'}"
        )
    return job_run_queue(
        kind=JobRun.Kind.PREVIEW,
        params=params,
        actor=actor,
        trigger=trigger,
        action="online_preview.started",
        audit_after={k: params[k] for k in params if k != "entities"},
    )


def _done_key(job_run_id: int) -> str:
    return f"portal:jobrun:{job_run_id}:done"


_redis_clients: dict[str, Any] = {}


def _redis() -> Any:
    """A per-process Redis client on REDIS_URL (None in the quickstart profile, which has no Redis)."""
    if not settings.REDIS_URL:
        return None
    url = settings.REDIS_URL.url
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=WAIT_RECHECK_SECONDS + 4
        )
    return _redis_clients[url]


def job_run_notify(job_run_id: int) -> None:
    """Wake a web process waiting on this run (called by the worker once the run's row is committed).

    The row stays the source of truth: the list item only says "look now". It expires, so a run nobody
    waits for (the async API, a 202) leaves nothing behind."""
    client = _redis()
    if client is None:
        return
    key = _done_key(job_run_id)
    try:
        client.pipeline(transaction=True).rpush(key, 1).expire(key, NOTIFY_TTL_SECONDS).execute()
    except Exception:  # the waiter falls back to reading the row: a lost wake-up only costs latency
        logger.warning("could not notify waiters of job run %s", job_run_id, exc_info=True)


def _status(run: JobRun) -> str | None:
    return JobRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()


def job_run_wait(*, run: JobRun, timeout: float) -> JobRun:
    """Wait until the JobRun row is terminal or `timeout` seconds passed (the API's short wait).

    With Redis, a blocking pop on the run's notification list (pushed by the worker after it committed
    the result), re-reading the row at least every WAIT_RECHECK_SECONDS in case a wake-up was lost (a
    worker killed mid-run, failed later by the sweeper); without Redis, polling the row."""
    deadline = time.monotonic() + timeout
    client = _redis()
    if client is not None:
        key = _done_key(run.pk)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                client.blpop([key], timeout=min(remaining, WAIT_RECHECK_SECONDS))
                run.refresh_from_db()
                if run.status in JobRun.TERMINAL:
                    return run
        except Exception:  # Redis unreachable: poll the row for the time left
            logger.warning("waiting on job run %s through Redis failed; polling", run.pk, exc_info=True)
        else:
            return run
    delay = 0.004  # a one-entity preview takes a few milliseconds in the worker: poll finely at first
    while True:
        status = _status(run)
        if status in JobRun.TERMINAL or time.monotonic() >= deadline:
            run.refresh_from_db()
            return run
        time.sleep(delay)
        delay = min(delay * 1.3, 0.1)


def online_preview_run(run: JobRun) -> dict[str, Any]:
    """The worker side: read online values via Feast, in canonical order, with age against TTL."""
    params = run.params
    project = params["project"]
    repo = gateway.project_repo(project)
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
    stamps: dict[Any, tuple[str, float]] = {}  # the features of one view share a timestamp per entity
    results = []
    for entity_row, values in zip(entity_rows, read.rows, strict=True):
        out = []
        for v in values:
            ttl = ttls.get(v.feature_view)
            stamp: str | None = None
            age: float | None = None
            if v.event_timestamp:
                known = stamps.get(v.event_timestamp)
                if known is None:
                    known = stamps[v.event_timestamp] = (
                        v.event_timestamp.isoformat(),
                        (now - v.event_timestamp).total_seconds(),
                    )
                stamp, age = known
            out.append(
                {
                    "index": v.index,
                    "feature": v.reference,
                    "value": json_value(v.value),
                    "status": v.status,
                    "event_timestamp": stamp,
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
