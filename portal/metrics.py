"""Prometheus metrics: request latency (middleware) and portal state read from the database at scrape time.

`GET /metrics` serves the Prometheus text format. It is protected: with `PORTAL_METRICS_TOKEN` (or
`PORTAL_METRICS_TOKEN_FILE`) set, a request must send `Authorization: Bearer <token>`; with no token
configured, only loopback clients (127.0.0.1, ::1: a sidecar, `kubectl exec ... curl localhost`) may
scrape. Behind the ingress the client address is the ingress controller's, never loopback.

Several gunicorn workers: when `PROMETHEUS_MULTIPROC_DIR` is set (the Kubernetes web Deployment sets
it to an emptyDir), prometheus_client keeps each worker's request histogram in files there and a
scrape of any worker returns the sum over all of them. Without it (quickstart, one process per test)
the histogram is per process. The database-backed families are computed at scrape time by
`PortalStateCollector`, so every worker returns the same values for them; they never go through the
multiprocess files.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from catalog.models import CatalogObject, Status, SyncRun
from jobs import models as job_models
from jobs.models import JobRun

logger = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
CHANGE_REQUEST_MODEL: str = "catalog.ChangeRequest"  # governance; may not exist yet
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

# Decided once, as prometheus_client decided when it was imported: importing Feast later sets
# PROMETHEUS_MULTIPROC_DIR for its own server, which must not switch this process's mode.
MULTIPROCESS = values.ValueClass is not values.MutexValue and bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUEST_LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Latency of HTTP requests served by the portal, by method, URL route and status code.",
    ["method", "route", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def _route(request: HttpRequest) -> str:
    """The URL pattern that served the request (bounded cardinality), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return "/" + str(match.route) if match.route else (match.view_name or "<unnamed>")


class PrometheusMiddleware:
    """Observes every request's latency into `portal_http_request_duration_seconds`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"  # bounded label values
        REQUEST_LATENCY.labels(method, _route(request), str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


# --- Portal state, read from the database at scrape time ------------------------------------------------


def _seconds(value: Any) -> float:
    return float(value.total_seconds()) if value is not None else 0.0


def _job_run_families() -> Iterator[Metric]:
    counts = GaugeMetricFamily("portal_job_runs", "JobRun rows by kind and status.", labels=["kind", "status"])
    durations = SummaryMetricFamily(
        "portal_job_run_duration_seconds",
        "Duration (started to finished) of finished JobRuns, by kind and status.",
        labels=["kind", "status"],
    )
    last = GaugeMetricFamily(
        "portal_job_run_last_finished_timestamp_seconds",
        "Unix time the latest JobRun of this kind finished with this status.",
        labels=["kind", "status"],
    )
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    for row in JobRun.objects.order_by().values("kind", "status").annotate(n=Count("id")):
        counts.add_metric([row["kind"], row["status"]], row["n"])
    finished = JobRun.objects.order_by().filter(started_at__isnull=False, finished_at__isnull=False)
    for row in finished.values("kind", "status").annotate(n=Count("id"), total=Sum(duration), last=Max("finished_at")):
        durations.add_metric([row["kind"], row["status"]], count_value=row["n"], sum_value=_seconds(row["total"]))
        last.add_metric([row["kind"], row["status"]], row["last"].timestamp())
    yield from (counts, durations, last)


def _sync_families() -> Iterator[Metric]:
    counts = GaugeMetricFamily("portal_sync_runs", "Registry sync runs by status.", labels=["status"])
    durations = SummaryMetricFamily(
        "portal_sync_duration_seconds", "Duration of finished registry syncs, by status.", labels=["status"]
    )
    last_duration = GaugeMetricFamily(
        "portal_sync_last_duration_seconds", "Duration of the latest finished registry sync.", labels=["status"]
    )
    last_success = GaugeMetricFamily(
        "portal_sync_last_success_timestamp_seconds", "Unix time the latest successful (or no-op) sync finished."
    )
    out_of_band = CounterMetricFamily(
        "portal_sync_out_of_band_changes",
        "Registry changes made outside the portal's own apply, summed over recorded sync runs.",
    )
    for row in SyncRun.objects.order_by().values("status").annotate(n=Count("id")):
        counts.add_metric([row["status"]], row["n"])
    timed = SyncRun.objects.order_by().filter(duration_ms__isnull=False)
    for row in timed.values("status").annotate(n=Count("id"), total=Sum("duration_ms")):
        durations.add_metric([row["status"]], count_value=row["n"], sum_value=(row["total"] or 0) / 1000)
    latest = timed.order_by("-started_at", "-id").values("status", "duration_ms").first()
    if latest is not None and latest["duration_ms"] is not None:
        last_duration.add_metric([latest["status"]], latest["duration_ms"] / 1000)
    ok = SyncRun.objects.filter(status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.NOOP]).aggregate(
        last=Max("finished_at")
    )["last"]
    if ok is not None:
        last_success.add_metric([], ok.timestamp())
    out_of_band.add_metric([], SyncRun.objects.aggregate(n=Sum("out_of_band"))["n"] or 0)
    yield from (counts, durations, last_duration, last_success, out_of_band)


def _materialization_ledger_families() -> Iterator[Metric]:
    """Per-view rows, runs and durations from the materialization ledger (jobs.MaterializationRecord)."""
    rows = CounterMetricFamily(
        "portal_materialization_rows",
        "Rows written to the online store per feature view, summed over the materialization ledger.",
        labels=["project", "view"],
    )
    runs = SummaryMetricFamily(
        "portal_materialization_duration_seconds",
        "Per-view materialization runs in the ledger (count) and their total duration, by status.",
        labels=["project", "view", "status"],
    )
    last = GaugeMetricFamily(
        "portal_materialization_last_finished_timestamp_seconds",
        "Unix time the latest per-view materialization with this status finished.",
        labels=["project", "view", "status"],
    )
    # The ledger is the operations module's; read it defensively so /metrics never breaks on it.
    record = getattr(job_models, "MaterializationRecord", None)
    if record is not None:
        ledger = record.objects.order_by()
        for row in ledger.values("project", "view").annotate(n=Sum("rows_written")):
            rows.add_metric([row["project"], row["view"]], row["n"] or 0)
        by_status = ledger.values("project", "view", "status").annotate(
            n=Count("id"), total=Sum("duration_seconds"), last=Max("finished_at")
        )
        for row in by_status:
            labels = [row["project"], row["view"], row["status"]]
            runs.add_metric(labels, count_value=row["n"], sum_value=float(row["total"] or 0))
            if row["last"] is not None:
                last.add_metric(labels, row["last"].timestamp())
    yield from (rows, runs, last)


def _materialization_families() -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "portal_materialization_lag_seconds",
        "Seconds since the end of the latest materialized interval of each online feature view.",
        labels=["project", "view"],
    )
    ttl = GaugeMetricFamily(
        "portal_feature_view_ttl_seconds", "TTL of each online feature view (0: no TTL).", labels=["project", "view"]
    )
    materialized = GaugeMetricFamily(
        "portal_feature_view_materialized",
        "1 if the online feature view was ever materialized, 0 if never.",
        labels=["project", "view"],
    )
    now = timezone.now()
    views = (
        CatalogObject.objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW, status__in=[Status.ACTIVE], online=True)
        .exclude(subkind="on_demand")
        .order_by()
        .values_list("project__name", "name", "ttl_seconds", "last_materialized_end")
    )
    for project, name, ttl_seconds, last_end in views:
        labels = [project, name]
        ttl.add_metric(labels, ttl_seconds or 0)
        materialized.add_metric(labels, 0 if last_end is None else 1)
        if last_end is not None:
            lag.add_metric(labels, max(0.0, (now - last_end).total_seconds()))
    yield from (lag, ttl, materialized)


def _change_request_families() -> Iterator[Metric]:
    family = GaugeMetricFamily("portal_change_requests", "Change requests by state.", labels=["status"])
    try:
        # Governance adds catalog.ChangeRequest (with a `status` field) later; until then the family
        # is exposed empty, and it fills in as soon as the model exists.
        model: Any = apps.get_model(CHANGE_REQUEST_MODEL)
    except LookupError:
        model = None
    if model is not None:
        for row in model.objects.order_by().values("status").annotate(n=Count("pk")):
            family.add_metric([str(row["status"])], row["n"])
    yield family


class PortalStateCollector(Collector):
    """Gauges computed from the portal database when Prometheus scrapes (the same in every process)."""

    SECTIONS: tuple[Callable[[], Iterator[Metric]], ...] = (
        _job_run_families,
        _sync_families,
        _materialization_families,
        _materialization_ledger_families,
        _change_request_families,
    )

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "portal_metrics_collector_up", "1 if the section's database query succeeded.", labels=["section"]
        )
        families: list[Metric] = []
        for section in self.SECTIONS:
            name = section.__name__.strip("_").removesuffix("_families")
            try:
                families.extend(section())
                up.add_metric([name], 1)
            except DatabaseError as exc:
                logger.warning("metrics: the %s query failed: %s", name, exc)
                up.add_metric([name], 0)
        return [*families, up]


def render() -> bytes:
    """The exposition text: request histograms (all gunicorn workers when multiprocess) plus portal state."""
    state = CollectorRegistry(auto_describe=False)
    state.register(PortalStateCollector())
    if MULTIPROCESS:
        processes = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
        return generate_latest(processes) + generate_latest(state)
    return generate_latest(REGISTRY) + generate_latest(state)


def _client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: bearer token when PORTAL_METRICS_TOKEN is set, else loopback clients only."""
    token: str = settings.PORTAL_METRICS_TOKEN
    if token:
        header = str(request.META.get("HTTP_AUTHORIZATION", ""))
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = HttpResponse("metrics: missing or wrong bearer token\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif _client_ip(request) not in LOOPBACK:
        return HttpResponse(
            "metrics: PORTAL_METRICS_TOKEN is not set, so only loopback clients may scrape\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
