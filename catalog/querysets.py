"""Reusable, permission-scoped querysets (NetBox's restrict-at-the-queryset idea)."""

from __future__ import annotations

from typing import Any

from django.db import models


class CatalogObjectQuerySet(models.QuerySet[Any]):
    """Queryset for catalog objects."""

    def visible_to(self, user: Any) -> CatalogObjectQuerySet:
        """The catalog is readable by every active user holding a portal role; others see nothing."""
        from catalog.permissions import can_view_catalog

        if not can_view_catalog(user):
            return self.none()
        return self

    def active(self) -> CatalogObjectQuerySet:
        """Objects still present in the registry."""
        return self.exclude(status="removed")
