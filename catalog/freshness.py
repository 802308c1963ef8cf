"""Feature-view freshness: fresh, stale or never, from the last materialization against the TTL.

Pure computation, no I/O: callers pass a catalog row (or the two values) and, optionally, `now`.

Rules (one place, used by catalog pages, the dashboard and the stale-alert beat task):

- ``never``: the view was never materialized (``last_materialized_end`` is None).
- ``fresh``: materialized, and ``now - last_materialized_end <= ttl``. Feast's TTL 0 (or None)
  means "no expiry", so a materialized view with no TTL is always fresh.
- ``stale``: materialized, but the newest materialized data is older than the TTL: the online store
  serves values Feast will report as ``OUTSIDE_MAX_AGE`` (or soon will).
- ``not_applicable``: only from :func:`feature_view_freshness`, for views that are never
  materialized by design (on-demand views, or ``online=False``).

Example::

    from catalog.freshness import feature_view_freshness
    f = feature_view_freshness(view)            # view: catalog FeatureView / CatalogObject row
    f.state        # "fresh" | "stale" | "never" | "not_applicable"
    f.age_seconds  # seconds since last_materialized_end (None when never)
    f.stale_at     # when a fresh view turns stale (None without TTL or when never)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from django.utils import timezone


class Freshness(StrEnum):
    """A feature view's freshness state."""

    FRESH = "fresh"
    STALE = "stale"
    NEVER = "never"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class FreshnessResult:
    """The state plus the numbers behind it (for badges, charts and alerts)."""

    state: Freshness
    last_materialized_end: datetime | None
    ttl_seconds: int | None
    age_seconds: float | None
    stale_at: datetime | None

    @property
    def age_ratio(self) -> float | None:
        """Age as a fraction of the TTL (1.0 = just turned stale); None without TTL or when never."""
        if self.age_seconds is None or not self.ttl_seconds:
            return None
        return self.age_seconds / self.ttl_seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (API output, job results)."""
        return {
            "state": str(self.state),
            "last_materialized_end": self.last_materialized_end.isoformat() if self.last_materialized_end else None,
            "ttl_seconds": self.ttl_seconds,
            "age_seconds": self.age_seconds,
            "stale_at": self.stale_at.isoformat() if self.stale_at else None,
        }


class _ViewLike(Protocol):
    last_materialized_end: datetime | None
    ttl_seconds: int | None
    subkind: str
    online: bool


def freshness(
    *, last_materialized_end: datetime | None, ttl_seconds: int | None, now: datetime | None = None
) -> FreshnessResult:
    """Fresh, stale or never for one view's last materialized end and TTL (TTL 0/None = no expiry)."""
    now = now or timezone.now()
    ttl = int(ttl_seconds) if ttl_seconds else None
    if last_materialized_end is None:
        return FreshnessResult(Freshness.NEVER, None, ttl, None, None)
    age = (now - last_materialized_end).total_seconds()
    if ttl is None:
        return FreshnessResult(Freshness.FRESH, last_materialized_end, None, age, None)
    stale_at = last_materialized_end + timedelta(seconds=ttl)
    state = Freshness.STALE if now > stale_at else Freshness.FRESH
    return FreshnessResult(state, last_materialized_end, ttl, age, stale_at)


def feature_view_freshness(view: _ViewLike, *, now: datetime | None = None) -> FreshnessResult:
    """Freshness of a catalog feature-view row; on-demand and offline-only views are not_applicable."""
    if view.subkind == "on_demand" or not view.online:
        return FreshnessResult(Freshness.NOT_APPLICABLE, view.last_materialized_end, view.ttl_seconds, None, None)
    return freshness(last_materialized_end=view.last_materialized_end, ttl_seconds=view.ttl_seconds, now=now)
