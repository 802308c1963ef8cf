"""django-filter filter sets for the API; a bad filter value is a 400 naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django_filters import rest_framework as df
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from catalog.api.exceptions import InvalidFilter
from catalog.models import AuditEvent, CatalogObject, LineageEdge, ModelConsumer, Status


class StrictFilterBackend(df.DjangoFilterBackend):  # type: ignore[misc]  # django-filter is untyped
    """DjangoFilterBackend whose validation errors become InvalidFilter (400 naming the parameter)."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        errors: dict[str, list[str]] = {}
        for name, flt in filterset.filters.items():
            # An empty value for a choice (`?kind=`) names no choice: a 400, not "no filter".
            if isinstance(flt, df.ChoiceFilter | df.MultipleChoiceFilter) and "" in request.query_params.getlist(name):
                errors[name] = ["Choose one of the documented values (an empty value is not one)."]
        if not filterset.is_valid():
            errors.update({k: [str(m) for m in v] for k, v in filterset.errors.items()})
        if errors:
            raise InvalidFilter(errors)
        qs: QuerySet[Any] = filterset.qs
        return qs


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (PostgreSQL rejects offsets beyond ±15:59); ValidationError if out of range."""
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        raise ValidationError("Enter a date-time between years 1 and 9999.", code="invalid") from None


class UtcIsoDateTimeField(IsoDateTimeField):  # type: ignore[misc]
    """An ISO 8601 date-time, normalised to UTC."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        return to_utc(parsed) if parsed is not None else None


@extend_schema_field(OpenApiTypes.STR)  # an ISO 8601 date-time or date: wider than OpenAPI's date-time
class UtcIsoDateTimeFilter(df.IsoDateTimeFilter):  # type: ignore[misc]
    """IsoDateTimeFilter that normalises to UTC (and rejects out-of-range offsets with a 400)."""

    field_class = UtcIsoDateTimeField


class CatalogObjectFilter(df.FilterSet):  # type: ignore[misc]
    """Filters shared by every catalog list: owner, team, tag, entity, kind, status, updated_since."""

    project = df.CharFilter(field_name="project__name", help_text="Project name.")
    kind = df.MultipleChoiceFilter(choices=CatalogObject.Kind.choices, help_text="Object kind (repeatable).")
    subkind = df.CharFilter(help_text="batch / stream / on_demand for views; file / push / request ... for sources.")
    status = df.MultipleChoiceFilter(choices=Status.choices, help_text="Lifecycle status (repeatable).")
    owner = df.CharFilter(field_name="owner", lookup_expr="iexact", help_text="Feast owner (exact, case-insensitive).")
    team = df.CharFilter(field_name="team__name", help_text="Owning team name.")
    tag = df.CharFilter(method="filter_tag", help_text="`key` or `key:value`.")
    entity = df.CharFilter(method="filter_entity", help_text="Views keyed by this entity.")
    name = df.CharFilter(field_name="name", lookup_expr="icontains", help_text="Name contains (case-insensitive).")
    updated_since = UtcIsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="ISO 8601 date-time: changed in the portal since."
    )

    class Meta:
        model = CatalogObject
        fields: list[str] = []

    def filter_tag(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        """`key` (has the tag) or `key:value` (tag equals value)."""
        key, sep, tag_value = value.partition(":")
        if sep:  # a key lookup, not JSON containment: SQLite (the quickstart) has no `contains`
            tagged: QuerySet[Any] = queryset.filter(**{f"tags__{key}": tag_value})
            return tagged
        return queryset.filter(tags__has_key=key)

    def filter_entity(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        """Objects whose entities include `value` (views), or the entity itself."""
        keyed = LineageEdge.objects.filter(kind=LineageEdge.Kind.ENTITY_VIEW, upstream__name=value)
        return queryset.filter(Q(pk__in=keyed.values("downstream_id")) | Q(kind=CatalogObject.Kind.ENTITY, name=value))


class ModelConsumerFilter(df.FilterSet):  # type: ignore[misc]
    """Filters for registered models."""

    project = df.CharFilter(field_name="service__project__name", help_text="Project of the feature service.")
    service = df.CharFilter(field_name="service__name", help_text="Feature service name.")
    owner = df.CharFilter(field_name="owner", lookup_expr="iexact")
    team = df.CharFilter(field_name="team__name")
    name = df.CharFilter(field_name="name")

    class Meta:
        model = ModelConsumer
        fields: list[str] = []


class AuditEventFilter(df.FilterSet):  # type: ignore[misc]
    """Filters for the audit log."""

    action = df.CharFilter(help_text="Exact action, e.g. model_consumer.registered.")
    action_prefix = df.CharFilter(field_name="action", lookup_expr="startswith", help_text="e.g. model_consumer.")
    object_type = df.CharFilter()
    object_id = df.CharFilter()
    actor = df.CharFilter(field_name="actor_name", help_text="Username ('system' for jobs).")
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="ISO 8601 date-time.")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="ISO 8601 date-time.")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
