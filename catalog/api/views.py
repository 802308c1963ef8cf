"""Catalog API views: thin interfaces over selectors and services (see catalog/api/permissions.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors
from catalog.api import examples
from catalog.api.exceptions import InvalidFilter
from catalog.api.filters import CatalogObjectFilter, ModelConsumerFilter, SelectorFilterBackend, StrictFilterBackend
from catalog.api.permissions import CatalogReader, TokenHasScope
from catalog.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenInputSerializer,
    ApiTokenSerializer,
    AuditEventSerializer,
    DiffSerializer,
    FeatureSerializer,
    LineageGraphSerializer,
    MeSerializer,
    ModelConsumerInputSerializer,
    ModelConsumerSerializer,
    ObjectDetailSerializer,
    ObjectSummarySerializer,
    ObjectVersionDetailSerializer,
    ObjectVersionSerializer,
    ProjectSerializer,
    SearchResultsSerializer,
)
from catalog.filters import AuditEventFilter
from catalog.lineage import lineage_graph
from catalog.models import ApiToken, AuditEvent, CatalogObject, Feature, ObjectVersion, Project, ServiceFeature, Status
from catalog.permissions import user_roles
from catalog.services.consumers import model_consumer_delete, model_consumer_register
from catalog.services.tokens import api_token_create, api_token_revoke
from catalog.timeparse import NotAnInstant, parse_instant

READERS = [IsAuthenticated, TokenHasScope, CatalogReader]
OBJECT_ORDERING = ["name", "kind", "status", "updated_at", "created_at", "feast_updated_at", "version"]

AS_OF = OpenApiParameter(
    "as_of",
    OpenApiTypes.STR,
    description="The catalog as it was at this ISO 8601 date or date-time (a date means its end, UTC).",
)


def parse_as_of(raw: str) -> datetime:
    """An ISO date-time (naive → UTC) or a date (its end of day, UTC): catalog.timeparse; InvalidFilter otherwise."""
    try:
        return parse_instant(raw, date_means="end")
    except NotAnInstant as exc:
        raise InvalidFilter({"as_of": [f"{exc}."]}) from None


def text_param(request: Request, name: str) -> str | None:
    """A text query parameter (portal.middleware has refused NUL characters already)."""
    raw: str | None = request.query_params.get(name)
    return raw


def int_param(request: Request, name: str, *, required: bool = True) -> int | None:
    """A non-negative integer query parameter; InvalidFilter naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if required:
            raise InvalidFilter({name: ["This parameter is required."]})
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise InvalidFilter({name: ["Enter a whole number."]})
    return int(raw)


def project_or_404(request: Request, name: str) -> Project:
    """A project the user may see, else 404."""
    try:
        return selectors.project_get(user=request.user, name=name)
    except Project.DoesNotExist:
        raise NotFound(f"No project {name}.") from None


def object_or_404(request: Request, project: str, kind: str, name: str) -> CatalogObject:
    """A catalog object the user may see, by natural key, else 404."""
    try:
        return selectors.object_get(user=request.user, project=project, kind=kind, name=name)
    except CatalogObject.DoesNotExist:
        raise NotFound(f"No {kind.replace('_', ' ')} {name} in project {project}.") from None


# --- Projects -------------------------------------------------------------------------------------


@extend_schema(tags=["catalog"], summary="List projects", examples=[examples.PROJECT_LIST])
class ProjectListApi(generics.ListAPIView[Project]):
    """Every Feast project the portal mirrors."""

    permission_classes = READERS
    serializer_class = ProjectSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["name", "feast_updated_at"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.project_queryset(user=self.request.user)


@extend_schema(tags=["catalog"], summary="Get a project", examples=[examples.PROJECT])
class ProjectDetailApi(generics.RetrieveAPIView[Project]):
    """One project by name."""

    permission_classes = READERS
    serializer_class = ProjectSerializer

    def get_object(self) -> Project:
        return project_or_404(self.request, self.kwargs["project"])


# --- Catalog objects ------------------------------------------------------------------------------


class ObjectListApi(generics.ListAPIView[CatalogObject]):
    """Catalog objects of one kind (or every kind), in one project or across projects.

    Filters: project, kind, subkind, status, owner, team, tag (`key` or `key:value`), entity, name,
    updated_since; `?as_of=` shows the catalog as it was then; `?ordering=` any of name, kind,
    status, updated_at, created_at, feast_updated_at, version (prefix `-` for descending).
    """

    permission_classes = READERS
    serializer_class = ObjectSummarySerializer
    filter_backends = [StrictFilterBackend, OrderingFilter]
    filterset_class = CatalogObjectFilter
    ordering_fields = OBJECT_ORDERING
    ordering = ["name"]
    kind: str | None = None

    def get_queryset(self) -> QuerySet[CatalogObject]:
        project = self.kwargs.get("project")
        if project is not None:
            project_or_404(self.request, project)
        raw = self.request.query_params.get("as_of")
        if raw is not None:
            qs = selectors.catalog_as_of(user=self.request.user, when=parse_as_of(raw), project=project, kind=self.kind)
            return qs.select_related("team")
        return selectors.object_list(user=self.request.user, kind=self.kind, project=project)


def _object_list_view(kind: str | None, label: str, *, in_project: bool) -> Any:
    where = "in a project" if in_project else "across projects"
    view = extend_schema_view(
        get=extend_schema(
            tags=["catalog"],
            summary=f"List {label} {where}",
            parameters=[AS_OF],
            examples=[examples.OBJECT_LIST],
            operation_id=f"{'project_' if in_project else ''}{(kind or 'object')}s_list",
        )
    )(type(f"{(kind or 'object').title().replace('_', '')}ListApi", (ObjectListApi,), {"kind": kind}))
    return cast(type[ObjectListApi], view).as_view()


class ObjectDetailApi(APIView):
    """One catalog object by natural key: views carry `features`, services their ordered `vector`."""

    permission_classes = READERS
    kind: str = ""

    def get(self, request: Request, project: str, name: str) -> Response:
        qs = selectors.object_list(user=request.user, kind=self.kind, project=project)
        if self.kind == CatalogObject.Kind.FEATURE_VIEW:
            qs = qs.prefetch_related(Prefetch("features", queryset=Feature.objects.order_by("position")))
        elif self.kind == CatalogObject.Kind.FEATURE_SERVICE:
            qs = qs.prefetch_related(Prefetch("vector", queryset=ServiceFeature.objects.order_by("index")))
        obj = qs.filter(name=name).first()
        if obj is None:
            raise NotFound(f"No {self.kind.replace('_', ' ')} {name} in project {project}.")
        return Response(ObjectDetailSerializer(obj).data)


def _object_detail_view(kind: str, label: str) -> Any:
    example: OpenApiExample = {
        CatalogObject.Kind.ENTITY.value: examples.ENTITY_DETAIL,
        CatalogObject.Kind.DATA_SOURCE.value: examples.SOURCE_DETAIL,
        CatalogObject.Kind.FEATURE_VIEW.value: examples.VIEW_DETAIL,
        CatalogObject.Kind.FEATURE_SERVICE.value: examples.SERVICE_DETAIL,
        CatalogObject.Kind.SAVED_DATASET.value: examples.SAVED_DATASET_DETAIL,
        CatalogObject.Kind.VALIDATION_REFERENCE.value: examples.VALIDATION_REFERENCE_DETAIL,
        CatalogObject.Kind.PERMISSION.value: examples.PERMISSION_DETAIL,
    }[kind]
    view = extend_schema_view(
        get=extend_schema(
            tags=["catalog"],
            summary=f"Get a {label}",
            responses=ObjectDetailSerializer,
            examples=[example],
            operation_id=f"{kind}s_retrieve",
        )
    )(type(f"{kind.title().replace('_', '')}DetailApi", (ObjectDetailApi,), {"kind": kind}))
    return cast(type[ObjectDetailApi], view).as_view()


@extend_schema(
    tags=["catalog"],
    summary="List features of a project's views",
    parameters=[OpenApiParameter("view", OpenApiTypes.STR, description="Only this feature view's features.")],
    examples=[examples.FEATURE_LIST],
)
class FeatureListApi(generics.ListAPIView[Feature]):
    """Features of a project's feature views (`?view=` for one view), in view then position order."""

    permission_classes = READERS
    serializer_class = FeatureSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["name", "position", "dtype"]
    ordering = ["position"]

    def get_queryset(self) -> QuerySet[Feature]:
        project = project_or_404(self.request, self.kwargs["project"])
        return selectors.feature_list(
            user=self.request.user, project=project.name, view=text_param(self.request, "view") or None
        )


# --- History, versions, diff ----------------------------------------------------------------------


def target_object(request: Request, kwargs: dict[str, Any]) -> CatalogObject:
    """The object named by a `<project>/<kind_slug>/<name>` route, else 404."""
    kind = selectors.KIND_SLUGS.get(kwargs["kind_slug"])
    if kind is None:
        raise NotFound(f"No such kind {kwargs['kind_slug']}.")
    return object_or_404(request, kwargs["project"], kind, kwargs["name"])


@extend_schema(tags=["history"], summary="List an object's versions", examples=[examples.HISTORY])
class ObjectHistoryApi(generics.ListAPIView[ObjectVersion]):
    """Every recorded version of an object, newest first, with its field-level change summary."""

    permission_classes = READERS
    serializer_class = ObjectVersionSerializer
    filter_backends: list[Any] = []
    ordering = ["-version"]

    def get_queryset(self) -> QuerySet[ObjectVersion]:
        return selectors.object_history(user=self.request.user, obj=target_object(self.request, self.kwargs))


@extend_schema(tags=["history"], summary="Get one version with its spec")
class ObjectVersionApi(APIView):
    """One recorded version of an object, with the spec it recorded."""

    permission_classes = READERS

    @extend_schema(responses=ObjectVersionDetailSerializer, examples=[examples.VERSION])
    def get(self, request: Request, project: str, kind_slug: str, name: str, version: int) -> Response:
        version_row = get_object_or_404(
            selectors.object_history(user=request.user, obj=target_object(request, self.kwargs)), version=version
        )
        return Response(ObjectVersionDetailSerializer(version_row).data)


@extend_schema(
    tags=["history"],
    summary="Diff two versions",
    parameters=[
        OpenApiParameter("from", OpenApiTypes.INT, required=True, description="The older version."),
        OpenApiParameter("to", OpenApiTypes.INT, required=True, description="The newer version."),
    ],
    responses=DiffSerializer,
    examples=[examples.DIFF],
)
class ObjectDiffApi(APIView):
    """Field-level differences between two versions of an object (`?from=1&to=2`)."""

    permission_classes = READERS

    def get(self, request: Request, project: str, kind_slug: str, name: str) -> Response:
        obj = target_object(request, self.kwargs)
        from_version, to_version = int_param(request, "from"), int_param(request, "to")
        assert from_version is not None and to_version is not None
        try:
            changes = selectors.version_diff(
                user=request.user, obj=obj, from_version=from_version, to_version=to_version
            )
        except ObjectVersion.DoesNotExist:
            raise NotFound(f"{obj.name} has no version {from_version} or {to_version}.") from None
        return Response({"from_version": from_version, "to_version": to_version, "changes": changes})


# --- Lineage --------------------------------------------------------------------------------------


@extend_schema(
    tags=["lineage"],
    summary="A project's lineage graph",
    parameters=[
        OpenApiParameter(
            "focus",
            OpenApiTypes.STR,
            description=(
                "`<kind-slug>/<name>` (e.g. `feature-views/employee_features`) or `<kind>:<name>` "
                "(`feature_view:employee_features`): flag its upstream and downstream."
            ),
        )
    ],
    responses=LineageGraphSerializer,
    examples=[examples.LINEAGE],
)
class LineageApi(APIView):
    """Nodes (columns 0 sources/entities … 4 models) and edges of a project's lineage."""

    permission_classes = READERS

    def get(self, request: Request, project: str) -> Response:
        proj = project_or_404(request, project)
        focus = None
        raw = text_param(request, "focus")
        if raw:
            # `feature-views/<name>` (URL style) or `feature_view:<name>` (the browser's ?focus=)
            prefix, sep, name = raw.partition("/") if "/" in raw else raw.partition(":")
            kind = selectors.KIND_SLUGS.get(prefix) if sep == "/" else prefix
            if kind not in CatalogObject.Kind.values or not name:
                raise InvalidFilter(
                    {"focus": ["Expected <kind-slug>/<name> or <kind>:<name>, e.g. feature-views/employee_features."]}
                )
            assert kind is not None
            focus = object_or_404(request, project, kind, name)
        return Response(lineage_graph(user=request.user, project=proj, focus=focus))


# --- Models (consumers) ---------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(tags=["models"], summary="List registered models", examples=[examples.MODEL_LIST]),
    post=extend_schema(
        tags=["models"],
        summary="Register a model against a feature service",
        request=ModelConsumerInputSerializer,
        responses={201: ModelConsumerSerializer},
        examples=[examples.MODEL_CREATE],
    ),
)
class ModelConsumerListApi(generics.ListAPIView[Any]):
    """Models registered against feature services (`POST` registers one: proposer role, `propose` scope)."""

    permission_classes = READERS
    required_scopes = {"POST": ApiToken.Scope.PROPOSE}
    serializer_class = ModelConsumerSerializer
    filter_backends = [StrictFilterBackend, OrderingFilter]
    filterset_class = ModelConsumerFilter
    ordering_fields = ["name", "created_at", "version"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.model_consumer_list(user=self.request.user)

    def post(self, request: Request) -> Response:
        data = ModelConsumerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        args = dict(data.validated_data)
        service = object_or_404(request, args.pop("project"), CatalogObject.Kind.FEATURE_SERVICE, args.pop("service"))
        consumer = model_consumer_register(actor=request.user, service=service, **args)
        consumer = selectors.model_consumer_list(user=request.user).get(pk=consumer.pk)
        return Response(ModelConsumerSerializer(consumer).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(tags=["models"], summary="Get a registered model", examples=[examples.MODEL]),
    delete=extend_schema(tags=["models"], summary="Delete a registered model"),
)
class ModelConsumerDetailApi(generics.RetrieveDestroyAPIView[Any]):
    """One registered model; `DELETE` by its creator, a member of its team, or an admin (`propose` scope)."""

    permission_classes = READERS
    required_scopes = {"DELETE": ApiToken.Scope.PROPOSE}
    serializer_class = ModelConsumerSerializer
    lookup_url_kwarg = "pk"

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.model_consumer_list(user=self.request.user)

    def perform_destroy(self, instance: Any) -> None:
        model_consumer_delete(actor=self.request.user, consumer=instance)


# --- Audit ----------------------------------------------------------------------------------------


@extend_schema(tags=["audit"], summary="The audit log", examples=[examples.AUDIT])
class AuditEventListApi(generics.ListAPIView[AuditEvent]):
    """Who did what and when, newest first: filter by action, object, actor and time."""

    permission_classes = READERS
    serializer_class = AuditEventSerializer
    filter_backends = [SelectorFilterBackend, OrderingFilter]
    filterset_class = AuditEventFilter  # applied by the selector, as on the audit page
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuditEvent.objects.none()
        return selectors.audit_event_list(user=self.request.user, params=self.request.query_params)


# --- Search ---------------------------------------------------------------------------------------

SEARCH_KINDS = ["entity", "data_source", "feature_view", "feature_service", "feature"]


@extend_schema(
    tags=["search"],
    summary="Search the catalog (the browser's ranking)",
    parameters=[
        OpenApiParameter(
            "q", OpenApiTypes.STR, required=True, description="Words to find (names, descriptions, tags, owners)."
        ),
        OpenApiParameter("kind", OpenApiTypes.STR, enum=SEARCH_KINDS),
        OpenApiParameter("project", OpenApiTypes.STR),
        OpenApiParameter("owner", OpenApiTypes.STR, description="An owner string or a team name."),
        OpenApiParameter("tag", OpenApiTypes.STR, description="`key=value` (or `key:value`)."),
        OpenApiParameter("entity", OpenApiTypes.STR),
        OpenApiParameter("status", OpenApiTypes.STR, enum=["active", "deprecated", "removed"]),
        OpenApiParameter("dtype", OpenApiTypes.STR),
        OpenApiParameter("page", OpenApiTypes.INT, description="1-based page number."),
        OpenApiParameter("page_size", OpenApiTypes.INT, description="Hits per page, 1 to 100 (default 20)."),
    ],
    responses=SearchResultsSerializer,
    examples=[examples.SEARCH],
)
class SearchApi(APIView):
    """Ranked full-text search with typo tolerance and facet counts: the same ranking as /search/."""

    permission_classes = READERS

    def get(self, request: Request) -> Response:
        from catalog.search import MAX_PAGE_SIZE, search

        params = request.query_params
        for name in params:
            text_param(request, name)
        errors: dict[str, list[str]] = {}
        q = params.get("q", "").strip()
        if not q or len(q) > 200:
            errors["q"] = ["Give 1 to 200 characters to search for."]
        if "kind" in params and params["kind"] not in SEARCH_KINDS:
            errors["kind"] = [f"One of {', '.join(SEARCH_KINDS)}."]
        if "status" in params and params["status"] not in Status.values:
            errors["status"] = [f"One of {', '.join(Status.values)}."]
        page, page_size = 1, 20
        for name in ("page", "page_size"):
            raw = params.get(name)
            if raw is None:
                continue
            limit = MAX_PAGE_SIZE if name == "page_size" else 100_000
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not 1 <= int(raw) <= limit:
                errors[name] = [f"A whole number from 1 to {limit}."]
            elif name == "page":
                page = int(raw)
            else:
                page_size = int(raw)
        if errors:
            raise InvalidFilter(errors)
        filters = {
            k: params[k] for k in ("kind", "project", "owner", "tag", "entity", "status", "dtype") if params.get(k)
        }
        if "tag" in filters and "=" not in filters["tag"]:
            filters["tag"] = filters["tag"].replace(":", "=", 1)
        results = search(user=request.user, q=q, filters=filters, page=page, per_page=page_size)
        body = {
            "q": results.q,
            "corrected": results.corrected,
            "total": results.total,
            "total_exact": results.total_exact,
            "facets_exact": results.facets_exact,
            "sample_rate": results.sample_rate,
            "has_next": results.has_next,
            "page": results.page,
            "pages": results.pages,
            "page_size": results.per_page,
            "results": [
                {
                    "kind": h.kind,
                    "subkind": h.subkind,
                    "project": h.project,
                    "name": h.name,
                    "parent": h.parent,
                    "reference": h.reference,
                    "description": h.description,
                    "owner": h.owner,
                    "team": h.team,
                    "status": h.status,
                    "dtype": h.dtype,
                    "score": h.score,
                    "url": h.url,
                }
                for h in results.hits
            ],
            "facets": {k: [{"value": v, "count": n} for v, n in values] for k, values in results.facets.items()},
        }
        return Response(body)


# --- Tokens and the current user ------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(tags=["tokens"], summary="List your API tokens", examples=[examples.TOKEN_LIST]),
    post=extend_schema(
        tags=["tokens"],
        summary="Create an API token (shown once)",
        request=ApiTokenInputSerializer,
        responses={201: ApiTokenCreatedSerializer},
        examples=[examples.TOKEN_CREATE, examples.TOKEN_CREATED],
    ),
)
class ApiTokenListApi(generics.ListAPIView[ApiToken]):
    """Your tokens (never their secrets). A token may only create tokens with a subset of its own scopes."""

    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"POST": ApiToken.Scope.READ}
    serializer_class = ApiTokenSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["created_at", "name"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[ApiToken]:
        return selectors.api_token_list(user=self.request.user)

    def post(self, request: Request) -> Response:
        data = ApiTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = api_token_create(
            actor=request.user,
            user=request.user,
            name=data.validated_data["name"],
            scopes=list(data.validated_data["scopes"]),
            expires_in_days=data.validated_data.get("expires_in_days"),
            parent=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        body = dict(ApiTokenSerializer(token).data)
        body["token"] = raw
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tokens"], summary="Revoke one of your API tokens", responses={204: None})
class ApiTokenDetailApi(APIView):
    """Revoke a token (yours only: another user's token is a 404), and the tokens made with it. Over a token,
    it takes a scope beyond `read` (a leaked read-only token cannot lock its user out), unless the token
    revokes itself."""

    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"DELETE": ApiToken.Scope.READ}

    def delete(self, request: Request, pk: int) -> Response:
        token = get_object_or_404(selectors.api_token_list(user=request.user), pk=pk)
        auth = request.auth
        if isinstance(auth, ApiToken) and auth.pk != token.pk and set(auth.scopes) <= {ApiToken.Scope.READ}:
            raise PermissionDenied("A read-only token may revoke only itself: revoking others needs a write scope.")
        api_token_revoke(actor=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["tokens"], summary="Who am I", responses=MeSerializer, examples=[examples.ME])
class MeApi(APIView):
    """The authenticated user, their roles and teams, and the token's scopes (null for sessions)."""

    permission_classes = [IsAuthenticated, TokenHasScope]

    def get(self, request: Request) -> Response:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            {
                "username": request.user.get_username(),
                "roles": sorted(user_roles(request.user)),
                "teams": sorted(request.user.teams.values_list("name", flat=True)),  # type: ignore[union-attr]
                "auth": "token" if token else "session",
                "token_scopes": token.scopes if token else None,
            }
        )
