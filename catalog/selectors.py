"""Every read the views and the API use, scoped to the user."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery

from catalog import feast_gateway as gateway
from catalog.exceptions import PortalError
from catalog.filters import AuditEventFilter, ChangeRequestFilter, filtered
from catalog.models import AuditEvent, CatalogObject, ChangeRequest, ObjectVersion, Project, Status, SyncRun
from catalog.models.objects import KIND_SLUG


def feature_value_team_ids(*, project: str, service: str | None = None, views: Iterable[str] = ()) -> set[int]:
    """The teams owning a selection's values (catalog.permissions' feature-value rule): a feature service's
    own team and its views' teams, or the listed views' teams."""
    from catalog.models import ServiceFeature

    names = set(views)
    objects = CatalogObject.objects.filter(project__name=project)
    teams: set[int] = set()
    if service:
        row = objects.filter(kind=CatalogObject.Kind.FEATURE_SERVICE, name=service).values("id", "team_id").first()
        if row is not None:
            teams.add(row["team_id"])
            names |= set(ServiceFeature.objects.filter(service_id=row["id"]).values_list("view_name", flat=True))
    if names:
        teams |= set(
            objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW, name__in=names).values_list("team_id", flat=True)
        )
    return {t for t in teams if t is not None}


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


def audit_event_list(*, user: Any, params: Mapping[str, Any] | None = None) -> QuerySet[AuditEvent]:
    """Audit events filtered by `params` (catalog.filters.AuditEventFilter), newest first; the page and the API
    list both read it (readers see the log; nobody edits it). InvalidInput on a bad filter value."""
    if not user.is_authenticated:
        return AuditEvent.objects.none()
    rows: QuerySet[AuditEvent] = filtered(AuditEventFilter, AuditEvent.objects.all(), params)
    return rows.order_by("-created_at", "-id")


def change_request_list(*, user: Any, params: Mapping[str, Any] | None = None) -> QuerySet[ChangeRequest]:
    """Change requests filtered by `params` (catalog.filters.ChangeRequestFilter, `mine` meaning the user's),
    newest first; the list page and the API list both read it."""
    if not can_view(user):
        return ChangeRequest.objects.none()
    rows = ChangeRequest.objects.select_related("project", "author")
    request = SimpleNamespace(user=user)
    chosen: QuerySet[ChangeRequest] = filtered(ChangeRequestFilter, rows, params, request=request)
    return chosen.order_by("-created_at", "-id")


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


def feature_get(*, user: Any, project: str, view: str, name: str) -> Any:
    """One feature of a view, by `project/view:name` (raises CatalogObject.DoesNotExist)."""
    from catalog.models import Feature

    feature = (
        Feature.objects.filter(
            view__in=CatalogObject.objects.visible_to(user),
            view__project__name=project,
            view__kind=CatalogObject.Kind.FEATURE_VIEW,
            view__name=view,
            name=name,
        )
        .select_related("view__project", "view__team")
        .first()
    )
    if feature is None:
        raise CatalogObject.DoesNotExist(f"{project}/{view}:{name}")
    return feature


def feature_usage(*, user: Any, feature: Any) -> dict[str, list[Any]]:
    """Where a feature is used: service vector positions, and on-demand views fed by its view."""
    from catalog.models import LineageEdge, ServiceFeature

    positions = list(
        ServiceFeature.objects.filter(view=feature.view, feature_name=feature.name)
        .select_related("service__project")
        .order_by("service__name", "index")
    )
    on_demand = [
        e.downstream
        for e in LineageEdge.objects.filter(
            upstream=feature.view,
            kind=LineageEdge.Kind.VIEW_VIEW,
            downstream__in=CatalogObject.objects.visible_to(user),
        ).select_related("downstream__project")
    ]
    return {"services": positions, "on_demand_views": on_demand}


def on_demand_fields_read(spec: dict[str, Any]) -> dict[str, list[str]]:
    """What an on-demand view's spec (the catalog's JSON of its proto) reads: {feature view: [fields]}.

    A source given as a whole view embeds that view's spec (every field it had then); a projection names
    its columns. The same reading as governance's reference check (`gateway.references`), which refuses a
    change that leaves an on-demand view reading a field that is gone.
    """
    reads: dict[str, list[str]] = {}
    for source in (spec.get("sources") or {}).values():
        if not isinstance(source, dict):
            continue
        if isinstance(source.get("feature_view"), dict):
            embedded = source["feature_view"].get("spec") or {}
            name, columns = embedded.get("name", ""), embedded.get("features") or []
        elif isinstance(source.get("feature_view_projection"), dict):
            projection = source["feature_view_projection"]
            name, columns = projection.get("feature_view_name", ""), projection.get("feature_columns") or []
        else:
            continue
        reads.setdefault(str(name), []).extend(str(c.get("name", "")) for c in columns if isinstance(c, dict))
    return reads


def view_on_demand_readers(*, view: CatalogObject) -> dict[str, list[CatalogObject]]:
    """For each field of a view, the (not removed) on-demand views that read it, one query."""
    from catalog.models import LineageEdge

    readers: dict[str, list[CatalogObject]] = {}
    edges = (
        LineageEdge.objects.filter(upstream=view, kind=LineageEdge.Kind.VIEW_VIEW)
        .exclude(downstream__status=Status.REMOVED)
        .select_related("downstream__project")
        .order_by("downstream__name")
    )
    for edge in edges:
        for field in on_demand_fields_read(edge.downstream.spec).get(view.name, []):
            readers.setdefault(field, []).append(edge.downstream)
    return readers


def feature_removal(*, feature: Any) -> ObjectVersion | None:
    """The version of its view that removed a feature (the field dropped, or the whole view removed): when, and
    whether a change request or an out-of-band change did it. None when no recorded version says so."""
    path = f"features[{feature.name}]"
    for version in (
        ObjectVersion.objects.filter(object=feature.view).select_related("change_request").order_by("-version")
    ):
        if version.change == ObjectVersion.Change.REMOVED or any(
            isinstance(c, dict) and c.get("path") == path and c.get("change") == "removed" for c in version.changes
        ):
            return version
    return None


def view_feature_usage(*, view: CatalogObject) -> dict[str, list[str]]:
    """For each feature of a view, the services that use it (`service[index]`), one query."""
    from catalog.models import ServiceFeature

    usage: dict[str, list[str]] = {}
    for feature, service, index in (
        ServiceFeature.objects.filter(view=view)
        .order_by("service__name", "index")
        .values_list("feature_name", "service__name", "index")
    ):
        usage.setdefault(feature, []).append(f"{service}[{index}]")
    return usage


def owner_objects(*, user: Any, owner: str) -> dict[str, Any]:
    """Objects owned by an owner string or a team (by name), the team itself, and its registered models."""
    from django.db.models import Q

    from catalog.models import ModelConsumer, Team

    if not can_view(user):
        return {"objects": [], "team": None, "models": []}
    team = Team.objects.filter(name=owner).prefetch_related("members", "aliases").first()
    match = Q(owner=owner) | Q(team__name=owner)
    objects = list(
        CatalogObject.objects.visible_to(user)
        .filter(match)
        .select_related("project", "team")
        .order_by("status", "project__name", "kind", "name")[:500]
    )
    models_qs = ModelConsumer.objects.filter(Q(owner=owner) | Q(team__name=owner)) if objects or team else None
    models = list(models_qs.select_related("service__project")[:200]) if models_qs is not None else []
    return {"objects": objects, "team": team, "models": models}


def can_view(user: Any) -> bool:
    """True when the user may read the catalog."""
    from catalog.permissions import can_view_catalog

    return can_view_catalog(user)


def model_consumer_get(*, user: Any, pk: int) -> Any:
    """A registered model (raises ModelConsumer.DoesNotExist)."""
    from catalog.models import ModelConsumer

    if not can_view(user):
        raise ModelConsumer.DoesNotExist(pk)
    return ModelConsumer.objects.select_related("service__project", "team", "created_by").get(
        pk=pk, service__in=CatalogObject.objects.visible_to(user)
    )


def service_consumers(*, user: Any, service: CatalogObject) -> list[Any]:
    """Models registered against a feature service."""
    from catalog.models import ModelConsumer

    if not can_view(user):
        return []
    return list(ModelConsumer.objects.filter(service=service).select_related("team").order_by("name", "version"))


def project_queryset(*, user: Any) -> QuerySet[Project]:
    """Projects the user may see, as a queryset (API lists filter and paginate it)."""
    from catalog.permissions import can_view_catalog

    if not can_view_catalog(user):
        return Project.objects.none()
    return Project.objects.all()


def object_list(*, user: Any, kind: str | None = None, project: str | None = None) -> QuerySet[CatalogObject]:
    """Catalog objects the user may see, optionally of one kind and project (API lists)."""
    qs = CatalogObject.objects.visible_to(user).select_related("project", "team")
    if kind:
        qs = qs.filter(kind=kind)
    if project:
        qs = qs.filter(project__name=project)
    return qs


def feature_list(*, user: Any, project: str, view: str | None = None) -> QuerySet[Any]:
    """Features of a project's views (optionally one view), in view then position order."""
    from catalog.models import Feature

    qs = Feature.objects.filter(
        view__in=CatalogObject.objects.visible_to(user),
        view__project__name=project,
        view__kind=CatalogObject.Kind.FEATURE_VIEW,
    ).select_related("view__project")
    if view:
        qs = qs.filter(view__name=view)
    return qs


def model_consumer_list(*, user: Any) -> QuerySet[Any]:
    """Registered models whose feature service the user may see."""
    from catalog.models import ModelConsumer
    from catalog.permissions import can_view_catalog

    if not can_view_catalog(user):
        return ModelConsumer.objects.none()
    return ModelConsumer.objects.filter(service__in=CatalogObject.objects.visible_to(user)).select_related(
        "service__project", "team", "created_by"
    )


def service_account_list(*, user: Any) -> QuerySet[Any]:
    """Service accounts (catalog.services.service_accounts) with their roles, teams and tokens: admins only."""
    from django.contrib.auth import get_user_model

    from catalog.permissions import SERVICE_ACCOUNT_GROUP, has_role

    accounts = get_user_model().objects.filter(groups__name=SERVICE_ACCOUNT_GROUP)
    if not has_role(user, "admin"):
        return accounts.none()
    return accounts.prefetch_related("groups", "teams", "api_tokens").order_by("username")


def api_token_list(*, user: Any) -> QuerySet[Any]:
    """The user's own API tokens, newest first (never another user's)."""
    from catalog.models import ApiToken

    if user is None or not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).select_related("user")


def project_list(*, user: Any) -> list[Project]:
    """Projects the user may see (removed ones left out)."""
    if not can_view(user):
        return []
    return list(Project.objects.exclude(status=Status.REMOVED).order_by("name"))


def open_change_requests(*, obj: CatalogObject | None = None, limit: int = 10) -> list[ChangeRequest]:
    """Open change requests (all, or those whose plan touches `obj`), most recently updated first."""
    rows = ChangeRequest.objects.select_related("project", "author").filter(
        status__in=[*ChangeRequest.OPEN, ChangeRequest.Status.APPLYING]
    )
    if obj is None:
        return list(rows.order_by("-updated_at", "-id")[:limit])
    touching = rows.filter(project_id=obj.project_id, touches__kind=obj.kind, touches__name=obj.name)
    return list(touching.defer("plan", "proposal").order_by("-updated_at", "-id")[:limit])


def view_transformation(*, user: Any, obj: CatalogObject) -> dict[str, Any] | None:
    """A view's transformation source (what Feast runs) and its complete diff against the last recorded version
    whose source differed; None for objects without one."""
    from catalog.diff import source_diff, udf_source

    current = udf_source(obj.spec)
    if obj.kind != CatalogObject.Kind.FEATURE_VIEW or not current:
        return None
    for version, snapshot in object_history(user=user, obj=obj).values_list("version", "snapshot"):
        previous = udf_source(snapshot)
        if previous != current:
            label = f"version {version}"
            return {"after": current, "diff": source_diff(previous, current, before_label=label), "since": version}
    return {"after": current, "diff": "", "since": None}


_NON_TABLE_SOURCE_KINDS = {"request", "push", "kafka", "kinesis", "unknown"}  # no columns to read


def source_columns(*, source_name: str, project: Project) -> dict[str, Any]:
    """A data source's columns and types as Feast reads them from the source itself (for the data source
    page and the add-field form): {"columns": [(name, dtype)], "error": why they could not be read}."""
    obj = CatalogObject.objects.filter(project=project, kind="data_source", name=source_name).first()
    if obj is None or obj.subkind in _NON_TABLE_SOURCE_KINDS:
        return {"columns": [], "error": ""}
    repo = gateway.project_repos().get(project.name)
    if repo is None:
        return {"columns": [], "error": "no governed feature repo names this project here, so its data is not read"}
    try:
        protos = gateway.project_protos(repo, project.name, [("data_source", source_name)])
        if ("data_source", source_name) not in protos:
            return {"columns": [], "error": "the registry no longer has this data source"}
        columns = gateway.source_columns(repo, project.name, protos[("data_source", source_name)].message())
    except PortalError as exc:
        return {"columns": [], "error": str(exc)}
    return {"columns": list(columns.items()), "error": ""}


def feature_index(*, user: Any, params: Mapping[str, Any] | None = None) -> QuerySet[Any]:
    """Every live feature of every feature view the user may see, across projects, filtered and sorted by
    `params` (catalog.filters.FeatureIndexFilter; by project, view and position unless sorted), with `used_by`:
    how many feature services read it. InvalidInput on a bad filter value."""
    from django.db.models.functions import Coalesce

    from catalog.filters import FeatureIndexFilter
    from catalog.models import Feature, ServiceFeature

    if not can_view(user):
        return Feature.objects.none()
    readers = (
        ServiceFeature.objects.filter(view=OuterRef("view"), feature_name=OuterRef("name"))
        .exclude(service__status=Status.REMOVED)
        .values("view")
        .annotate(n=Count("service", distinct=True))
        .values("n")
    )
    rows = (
        Feature.objects.filter(
            view__in=CatalogObject.objects.visible_to(user).exclude(status=Status.REMOVED),
            view__kind=CatalogObject.Kind.FEATURE_VIEW,
        )
        .exclude(status=Status.REMOVED)
        .select_related("view__project", "view__team")
        .annotate(used_by=Coalesce(Subquery(readers), 0))
        .order_by("view__project__name", "view__name", "position")
    )
    filtered_rows: QuerySet[Any] = filtered(FeatureIndexFilter, rows, params)
    return filtered_rows


def team_directory(*, user: Any) -> list[dict[str, Any]]:
    """Every owner team with its members, how many catalog objects and models it owns, and the submitted change
    requests still waiting for its sign-off."""
    from catalog.models import ModelConsumer, Team
    from catalog.services.change_requests import approval_status

    if not can_view(user):
        return []
    waiting: dict[int, list[ChangeRequest]] = {}
    for cr in ChangeRequest.objects.filter(status=ChangeRequest.Status.SUBMITTED).select_related("project"):
        for team in approval_status(cr)["teams"]:
            if not team["satisfied"]:
                waiting.setdefault(int(team["id"]), []).append(cr)
    teams = Team.objects.prefetch_related("members", "aliases").order_by("name")
    owned = dict(
        CatalogObject.objects.visible_to(user)
        .exclude(status=Status.REMOVED)
        .filter(team__isnull=False)
        .values_list("team")
        .annotate(n=Count("id"))
        .values_list("team", "n")
    )
    models = dict(ModelConsumer.objects.filter(team__isnull=False).values_list("team").annotate(n=Count("id")))
    return [
        {
            "team": team,
            "objects": owned.get(team.pk, 0),
            "models": models.get(team.pk, 0),
            "waiting": waiting.get(team.pk, []),
        }
        for team in teams
    ]
