"""The filters of the portal's lists, one FilterSet per list, used by the selectors that both the HTML page
and the API list call: the same parameters mean the same thing, in the same order, everywhere.

Times are read by `catalog.timeparse.parse_instant` (an ISO 8601 date-time, or a bare date: its start).
A bad value raises InvalidInput naming the parameter (a 400 in the API; the page shows it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django_filters import rest_framework as df
from drf_spectacular.utils import extend_schema_field

from catalog.exceptions import InvalidInput
from catalog.models import AuditEvent, ChangeRequest, Feature
from catalog.models.governance import Severity
from catalog.timeparse import NotAnInstant, parse_instant


class InstantField(forms.Field):
    """An instant as users type it (see catalog.timeparse), as an aware UTC datetime."""

    def to_python(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        try:
            return parse_instant(value)
        except NotAnInstant as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


@extend_schema_field({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]})
class InstantFilter(df.Filter):  # type: ignore[misc]  # django-filter is untyped
    field_class = InstantField


def filtered(filterset_class: Any, queryset: QuerySet[Any], params: Mapping[str, Any] | None, **kwargs: Any) -> Any:
    """`queryset` through `filterset_class` with `params` (a QueryDict or a dict); InvalidInput on a bad value."""
    filterset = filterset_class(params or {}, queryset=queryset, **kwargs)
    if not filterset.is_valid():
        errors = {k: [str(m) for m in v] for k, v in filterset.errors.items()}
        names = ", ".join(sorted(errors))
        raise InvalidInput(f"bad filter value for {names}: {'; '.join(m for v in errors.values() for m in v)}", errors)
    return filterset.qs


class CreatedWithinFilter(df.FilterSet):  # type: ignore[misc]
    """`since` / `until` on a list's `created_at` (every list with a time filter: audit events, job runs)."""

    since = InstantFilter(field_name="created_at", lookup_expr="gte", help_text="ISO 8601 date-time or date.")
    until = InstantFilter(field_name="created_at", lookup_expr="lt", help_text="ISO 8601 date-time or date.")


class AuditEventFilter(CreatedWithinFilter):
    """The audit log's filters (the page and `GET /api/v1/audit-events/`)."""

    action = df.CharFilter(help_text="Exact action, e.g. model_consumer.registered.")
    action_prefix = df.CharFilter(field_name="action", lookup_expr="startswith", help_text="e.g. model_consumer.")
    object_type = df.CharFilter()
    object_id = df.CharFilter()
    actor = df.CharFilter(field_name="actor_name", help_text="Username ('system' for jobs).")
    q = df.CharFilter(method="filter_text", help_text="Text in the object's name or the action.")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_text(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(Q(object_repr__icontains=value) | Q(action__icontains=value))


OPEN = "open"  # the status filter's "every request still in play" (ChangeRequest.OPEN, and applying)


class ChangeRequestFilter(df.FilterSet):  # type: ignore[misc]
    """The change requests' filters (the list page and `GET /api/v1/change-requests/`)."""

    status = df.ChoiceFilter(
        choices=[(OPEN, "Open"), *ChangeRequest.Status.choices],
        method="filter_status",
        help_text="`open` (draft, submitted, approved, stale, failed or applying) or one status.",
    )
    project = df.CharFilter(field_name="project__name", help_text="Project name.")
    severity = df.ChoiceFilter(choices=Severity.choices, help_text="safe / risky / breaking.")
    author = df.CharFilter(field_name="author__username", help_text="The author's username.")
    mine = df.BooleanFilter(method="filter_mine", help_text="Only the requests you wrote.")
    external_repo = df.CharFilter(help_text="The git repository CI proposed it from (exact).")
    external_branch = df.CharFilter(help_text="The branch CI proposed it from (exact).")
    archive_sha256 = df.CharFilter(
        field_name="proposal__archive__sha256",
        help_text="SHA-256 of the archive its current revision was planned from (CI finds the approved request "
        "for the folder it merged).",
    )

    class Meta:
        model = ChangeRequest
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        if value == OPEN:
            return queryset.filter(status__in=[*ChangeRequest.OPEN, ChangeRequest.Status.APPLYING])
        return queryset.filter(status=value)

    def filter_mine(self, queryset: QuerySet[Any], name: str, value: bool) -> QuerySet[Any]:
        user = getattr(self.request, "user", None)
        return queryset.filter(author_id=getattr(user, "pk", None)) if value else queryset


class FeatureIndexFilter(df.FilterSet):  # type: ignore[misc]
    """The all-features table's filters and sort (the Features page)."""

    q = df.CharFilter(method="filter_text", help_text="Text in the feature's name or description.")
    project = df.CharFilter(field_name="view__project__name", help_text="Project name.")
    view = df.CharFilter(field_name="view__name", help_text="Feature view name.")
    dtype = df.CharFilter(field_name="dtype", lookup_expr="iexact", help_text="Feast type, e.g. Float32.")
    owner = df.CharFilter(method="filter_owner", help_text="The view's owner or owning team.")
    sort = df.OrderingFilter(
        fields=(
            ("name", "name"),
            ("view__name", "view"),
            ("view__project__name", "project"),
            ("dtype", "dtype"),
            ("view__owner", "owner"),
            ("used_by", "used_by"),
        ),
        help_text="name, view, project, dtype, owner or used_by; `-` first for descending.",
    )

    class Meta:
        model = Feature
        fields: list[str] = []

    def filter_text(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))

    def filter_owner(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(Q(view__owner__iexact=value) | Q(view__team__name=value))
