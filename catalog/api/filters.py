"""django-filter filter sets for the API; a bad filter value is a 400 naming the parameter."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django_filters import rest_framework as df
from rest_framework.request import Request

from catalog.api.exceptions import InvalidFilter
from catalog.filters import InstantFilter
from catalog.models import CatalogObject, LineageEdge, ModelConsumer, Status


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


class SelectorFilterBackend(df.DjangoFilterBackend):  # type: ignore[misc]
    """For lists whose selector applies the view's FilterSet itself (catalog.filters: one FilterSet for the page
    and the API): the backend only puts the filters into the OpenAPI schema and filters nothing twice."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        return queryset


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
    updated_since = InstantFilter(
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
