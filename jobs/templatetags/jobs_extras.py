"""Template tags that put operations data on any page (catalog pages, the dashboard) without the catalog
importing jobs: `{% load jobs_extras %}` then

    {% view_materialization project_name view_name %}   last run (failing / succeeded), last success, ledger link
    {% freshness_panel %}                               fresh / stale / never counts and the stale views
    {% feature_statistics project_name view_name feature_name %}   the latest offline statistics + histogram
    {% service_datasets service %}                       training datasets built from a feature service
"""

from __future__ import annotations

from typing import Any

from django import template

from catalog.freshness import Freshness, feature_view_freshness
from catalog.permissions import can_view_catalog
from jobs.models import MaterializationRecord
from jobs.selectors import job_run_result, latest_feature_statistics, online_views

register = template.Library()


@register.inclusion_tag("jobs/partials/_view_materialization.html")
def view_materialization(project: str, view: str) -> dict[str, Any]:
    """The view's latest portal materialization and last success (a failing run shows as failing)."""
    records = MaterializationRecord.objects.filter(project=project, view=view).exclude(
        status=MaterializationRecord.Status.SKIPPED
    )
    last = records.first()
    return {
        "project": project,
        "view": view,
        "last": last,
        "failing": last is not None and last.status == MaterializationRecord.Status.FAILED,
        "last_success": records.filter(status=MaterializationRecord.Status.SUCCEEDED).first(),
    }


@register.inclusion_tag("jobs/partials/_freshness_panel.html", takes_context=True)
def freshness_panel(context: dict[str, Any]) -> dict[str, Any]:
    """Counts of fresh / stale / never-materialized online views, and the stale ones (dashboard)."""
    user = context.get("user")
    if user is None or not can_view_catalog(user):
        return {"visible": False}
    rows = [(v, feature_view_freshness(v)) for v in online_views(user=user)]
    counts = {str(state): 0 for state in (Freshness.FRESH, Freshness.STALE, Freshness.NEVER)}
    for _view, f in rows:
        if str(f.state) in counts:
            counts[str(f.state)] += 1
    stale = [(v, f) for v, f in rows if f.state in (Freshness.STALE, Freshness.NEVER)]
    return {"visible": True, "counts": counts, "stale": stale}


@register.inclusion_tag("jobs/partials/_feature_statistics_tag.html", takes_context=True)
def feature_statistics(context: dict[str, Any], project: str, view: str, feature: str) -> dict[str, Any]:
    """The newest statistics of one feature (from the latest stats job of its view), with a histogram."""
    user = context.get("user")
    if user is None or not can_view_catalog(user):
        return {"f": None}
    run = latest_feature_statistics(user=user, project=project, view=view)
    result = job_run_result(user=user, run=run) if run else {}
    stats = next((f for f in result.get("features", []) if f.get("feature") == feature), None)
    return {"f": stats, "run": run, "project": project, "view": view}


@register.inclusion_tag("jobs/partials/_service_datasets.html", takes_context=True)
def service_datasets(context: dict[str, Any], service: Any, limit: int = 10) -> dict[str, Any]:
    """The training datasets built from a feature service (newest first), flagged when built on an old contract.

    `{% service_datasets obj %}` on the feature service page (one query; the page's `vector` gives the
    current contract).
    """
    from catalog.contracts import contract_for_service
    from jobs.permissions import can_build_training_dataset
    from jobs.selectors import training_dataset_list

    user = context.get("user")
    if user is None or not can_view_catalog(user):
        return {"datasets": []}
    datasets = list(
        training_dataset_list(user=user, project=service.project.name, feature_service=service.name)[: limit + 1]
    )
    return {
        "datasets": datasets[:limit],
        "more": len(datasets) > limit,
        "project": service.project.name,
        "service": service.name,
        "current_hash": contract_for_service(service, context.get("vector")).hash if datasets else "",
        "can_build": can_build_training_dataset(user),
    }


@register.simple_tag(takes_context=True)
def visible_job_ids(context: dict[str, Any], events: Any) -> set[int]:
    """The job ids among `events` (audit events) the user may open, so a page links only to those:
    `{% visible_job_ids page.object_list as visible %}` then `{% if e.job_run_id in visible %}` (one query)."""
    from jobs.selectors import job_run_list

    user = context.get("user")
    ids = {e.job_run_id for e in events if getattr(e, "job_run_id", None)}
    if not ids or user is None or not can_view_catalog(user):
        return set()
    return set(job_run_list(user=user).filter(pk__in=ids).values_list("pk", flat=True))


@register.inclusion_tag("jobs/partials/_worker_status.html", takes_context=True)
def worker_status(context: dict[str, Any]) -> dict[str, Any]:
    """Whether any Celery worker is alive (its heartbeat row), for the dashboard: jobs wait when none is."""
    from jobs.services.workers import ALIVE_SECONDS, workers_alive

    user = context.get("user")
    if user is None or not can_view_catalog(user):
        return {"visible": False}
    return {"visible": True, "alive": workers_alive(), "alive_seconds": ALIVE_SECONDS}


@register.filter
def job_steps(run: Any) -> str:
    """The run's step counter as it should read: a succeeded run has done every step it planned."""
    total = run.progress_total or 0
    if run.status == "succeeded":
        return f"{total}/{total}" if total else "done"
    return f"{run.progress_done or 0}/{total}"


ERROR_HEADLINE_CHARS = 200


@register.filter
def error_parts(error: str) -> dict[str, str]:
    """A job's error as people read it: its first line as the headline (cut at a sentence or a colon when it is
    long, e.g. an error carrying a schema dump), and the whole text as details when there is more."""
    text = (error or "").strip()
    headline = text.splitlines()[0].strip() if text else ""
    if len(headline) > ERROR_HEADLINE_CHARS:
        cut = max(headline.rfind(": ", 0, ERROR_HEADLINE_CHARS), headline.rfind(". ", 0, ERROR_HEADLINE_CHARS))
        headline = headline[: cut if cut > 20 else ERROR_HEADLINE_CHARS].rstrip(" .:") + " …"
    return {"headline": headline, "details": text if text != headline else ""}
