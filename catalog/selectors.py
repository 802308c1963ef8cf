"""Every read the views and the API use, scoped to the user."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from catalog.models import AuditEvent, CatalogObject, ObjectVersion, Project, Status, SyncRun


def dashboard_counts(*, user: Any) -> dict[str, int]:
    """Active objects per kind, plus features and projects."""
    qs = CatalogObject.objects.visible_to(user).active()
    per_kind = dict(qs.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    from catalog.models import Feature

    return {
        "projects": Project.objects.exclude(status=Status.REMOVED).count() if per_kind or qs.exists() else 0,
        "entities": per_kind.get(CatalogObject.Kind.ENTITY, 0),
        "data_sources": per_kind.get(CatalogObject.Kind.DATA_SOURCE, 0),
        "feature_views": per_kind.get(CatalogObject.Kind.FEATURE_VIEW, 0),
        "feature_services": per_kind.get(CatalogObject.Kind.FEATURE_SERVICE, 0),
        "features": Feature.objects.filter(
            view__in=qs.filter(kind=CatalogObject.Kind.FEATURE_VIEW), status=Status.ACTIVE
        ).count(),
    }


def recent_changes(*, user: Any, limit: int = 10) -> QuerySet[ObjectVersion]:
    """The latest recorded versions (registry changes), newest first."""
    visible = CatalogObject.objects.visible_to(user)
    return (
        ObjectVersion.objects.filter(object__in=visible)
        .select_related("object", "object__project")
        .order_by("-recorded_at", "-id")[:limit]
    )


def sync_run_list(*, user: Any, limit: int = 10) -> QuerySet[SyncRun]:
    """Recent sync runs (visible to every catalog reader)."""
    if not user.is_authenticated:
        return SyncRun.objects.none()
    return SyncRun.objects.all()[:limit]


def audit_event_list(*, user: Any) -> QuerySet[AuditEvent]:
    """Audit events, newest first (readers see the log; nobody edits it)."""
    if not user.is_authenticated:
        return AuditEvent.objects.none()
    return AuditEvent.objects.all()
