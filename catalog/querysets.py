"""Reusable, permission-scoped querysets (NetBox's restrict-at-the-queryset idea)."""

from __future__ import annotations

from typing import Any

from django.db import models


class CatalogObjectQuerySet(models.QuerySet[Any]):
    """Queryset for catalog objects."""

    def visible_to(self, user: Any) -> CatalogObjectQuerySet:
        """The catalog is readable by every signed-in, active user; anonymous users see nothing."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        return self

    def active(self) -> CatalogObjectQuerySet:
        """Objects still present in the registry."""
        return self.exclude(status="removed")
