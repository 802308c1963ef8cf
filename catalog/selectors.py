"""Every read the views and the API use, scoped to the user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery

from catalog.models import AuditEvent, CatalogObject, ObjectVersion, Project, Status, SyncRun
from catalog.models.objects import KIND_SLUG


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


def object_history(*, user: Any, obj: CatalogObject) -> QuerySet[ObjectVersion]:
    """Every recorded version of an object, newest first."""
    if not CatalogObject.objects.visible_to(user).filter(pk=obj.pk).exists():
        return ObjectVersion.objects.none()
    return obj.versions.select_related("sync_run").order_by("-version")


def version_diff(*, user: Any, obj: CatalogObject, from_version: int, to_version: int) -> list[dict[str, Any]]:
    """Field-level differences between two versions of an object."""
    from catalog.diff import diff_specs

    versions = dict(
        object_history(user=user, obj=obj)
        .filter(version__in=[from_version, to_version])
        .values_list("version", "snapshot")
    )
    if from_version not in versions or to_version not in versions:
        raise ObjectVersion.DoesNotExist(f"{obj.name} has no version {from_version} or {to_version}")
    return diff_specs(versions[from_version], versions[to_version])


def catalog_as_of(
    *, user: Any, when: datetime, project: str | None = None, kind: str | None = None
) -> QuerySet[CatalogObject]:
    """The catalog as it was at `when`: objects whose latest version then was not a removal.

    Each object is annotated with `as_of_version`, `as_of_change` and `as_of_version_id`.
    """
    latest = ObjectVersion.objects.filter(object=OuterRef("pk"), recorded_at__lte=when).order_by("-version")
    qs = (
        CatalogObject.objects.visible_to(user)
        .annotate(
            as_of_version_id=Subquery(latest.values("id")[:1]),
            as_of_version=Subquery(latest.values("version")[:1]),
            as_of_change=Subquery(latest.values("change")[:1]),
        )
        .filter(as_of_version_id__isnull=False)
        .exclude(as_of_change=ObjectVersion.Change.REMOVED)
        .select_related("project")
    )
    if project:
        qs = qs.filter(project__name=project)
    if kind:
        qs = qs.filter(kind=kind)
    ordered: QuerySet[CatalogObject] = qs.order_by("project__name", "kind", "name")
    return ordered


SLUG_FOR_KIND = KIND_SLUG
KIND_SLUGS = {slug: kind for kind, slug in KIND_SLUG.items()}


def project_get(*, user: Any, name: str) -> Project:
    """A project the user may see (raises Project.DoesNotExist)."""
    if not getattr(user, "is_authenticated", False):
        raise Project.DoesNotExist(name)
    project: Project = Project.objects.get(name=name)
    return project


def project_objects(*, user: Any, project: Project) -> dict[str, list[CatalogObject]]:
    """The project's objects (removed ones last), grouped by kind."""
    grouped: dict[str, list[CatalogObject]] = {kind: [] for kind in CatalogObject.Kind.values}
    qs = CatalogObject.objects.visible_to(user).filter(project=project).select_related("team").order_by("name")
    for obj in sorted(qs, key=lambda o: o.status == Status.REMOVED):
        grouped[obj.kind].append(obj)
    return grouped


def object_get(*, user: Any, project: str, kind: str, name: str) -> CatalogObject:
    """One catalog object by natural key (raises CatalogObject.DoesNotExist)."""
    obj: CatalogObject = (
        CatalogObject.objects.visible_to(user)
        .select_related("project", "team")
        .get(project__name=project, kind=kind, name=name)
    )
    return obj


def object_lineage(*, user: Any, obj: CatalogObject) -> dict[str, list[Any]]:
    """Direct upstream and downstream neighbours of an object."""
    from catalog.models import LineageEdge

    related = LineageEdge.objects.select_related("upstream__project", "downstream__project")
    return {
        "upstream": list(related.filter(downstream=obj).order_by("upstream__kind", "upstream__name")),
        "downstream": list(related.filter(upstream=obj).order_by("downstream__kind", "downstream__name")),
    }
