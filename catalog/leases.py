"""One lease helper for every "only one at a time" in the portal: a registry's sync (SyncState), a project's
apply (Project) and a view's materialization (jobs' ViewLock).

A lease is two columns of one row: until when it is held, and by whom (a random token, or the JobRun that
holds it). Taking it is one conditional UPDATE (free, expired, or already the holder's), so two workers
never both get it, on PostgreSQL and SQLite alike, with no lock held across the work. A holder that dies
leaves a lease that expires by itself; the holder extends a long one as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone


@dataclass(frozen=True)
class Lease:
    model: type[models.Model]
    until: str  # the DateTimeField: held until then (null: free)
    holder: str  # who holds it: a CharField token ("" when free) or a nullable ForeignKey

    def _free_holder(self) -> Any:
        return None if self.model._meta.get_field(self.holder).null else ""

    def take(self, holder: Any, duration: timedelta, **row: Any) -> bool:
        """Take the lease on the row `row` selects for `holder`, for `duration`: True when it is now theirs."""
        now = timezone.now()
        free = Q(**{f"{self.until}__isnull": True}) | Q(**{f"{self.until}__lt": now}) | Q(**{self.holder: holder})
        return bool(
            self.model._default_manager.filter(**row)
            .filter(free)
            .update(**{self.until: now + duration, self.holder: holder})
        )

    def extend(self, holder: Any, duration: timedelta, **row: Any) -> bool:
        """Push a held lease's end to `duration` from now; False when `holder` no longer holds it."""
        held = self.model._default_manager.filter(**row, **{self.holder: holder})
        return bool(held.update(**{self.until: timezone.now() + duration}))

    def release(self, holder: Any, **row: Any) -> None:
        """Free the lease if `holder` still holds it (a lease that expired and was taken by another stays theirs)."""
        self.model._default_manager.filter(**row, **{self.holder: holder}).update(
            **{self.until: None, self.holder: self._free_holder()}
        )
