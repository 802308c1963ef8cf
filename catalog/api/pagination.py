"""Cursor pagination for every list: stable under inserts, constant cost per page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from catalog.api.exceptions import InvalidFilter


class PortalCursorPagination(CursorPagination):
    """`?cursor=` pages of `page_size` (default 50, at most 500); ordering comes from the view.

    The view's `ordering` (or `?ordering=` through OrderingFilter) decides; `pk` breaks ties.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "pk"

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        if any(hasattr(backend, "get_ordering") for backend in getattr(view, "filter_backends", [])):
            ordering = tuple(super().get_ordering(request, queryset, view))
        else:
            declared = getattr(view, "ordering", None) or self.ordering
            ordering = (declared,) if isinstance(declared, str) else tuple(declared)
        if not any(field.lstrip("-") in ("pk", "id") for field in ordering):
            first_desc = ordering[0].startswith("-") if ordering else False
            ordering = (*ordering, "-pk" if first_desc else "pk")
        return ordering

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        # DRF puts a cursor's position into the WHERE clause as given: check it fits the ordering
        # field first, so a tampered cursor is a 400 rather than a database error.
        cursor = self.decode_cursor(request)
        if cursor is not None and cursor.position is not None and isinstance(queryset, QuerySet):
            position = str(cursor.position)  # a string from the query string (the stubs say int)
            field_name = self.get_ordering(request, queryset, view)[0].lstrip("-")
            field = queryset.model._meta.get_field("id" if field_name == "pk" else field_name)
            try:
                if "\x00" in position:
                    raise ValidationError("null character")
                value = field.to_python(position)
                offset = value.utcoffset() if isinstance(value, datetime) else None
                if offset is not None and abs(offset) >= timedelta(hours=16):  # beyond PostgreSQL's range
                    raise ValidationError("offset out of range")
            except (ValidationError, ValueError, TypeError):
                raise InvalidFilter(
                    {"cursor": ["Invalid cursor: use the `next` or `previous` link as given."]}
                ) from None
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidFilter({"cursor": ["Invalid cursor: use the `next` or `previous` link as given."]}) from None

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and (not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size):
            raise InvalidFilter({"page_size": [f"Enter a whole number from 1 to {self.max_page_size}."]})
        return super().get_page_size(request) or self.page_size
