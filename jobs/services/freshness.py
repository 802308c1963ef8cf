"""The periodic freshness check: per online view fresh/stale/never; the webhook fires once per turn to stale."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.freshness import Freshness, feature_view_freshness
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.notifications import notify
from jobs.models import FreshnessAlert


def freshness_check(*, now: datetime | None = None) -> dict[str, Any]:
    """Record each online view's freshness; notify (once) for views that turned stale since the last check."""
    now = now or timezone.now()
    views = (
        CatalogObject.objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW, online=True)
        .exclude(status=CatalogStatus.REMOVED)
        .exclude(subkind="on_demand")
        .select_related("project")
    )
    counts: dict[str, int] = {str(s): 0 for s in Freshness}
    turned_stale: list[dict[str, Any]] = []
    for view in views:
        result = feature_view_freshness(view, now=now)
        counts[str(result.state)] += 1
        with transaction.atomic():
            alert, created = FreshnessAlert.objects.select_for_update().get_or_create(
                project=view.project.name,
                view=view.name,
                defaults={"state": str(result.state), "changed_at": now},
            )
            previous = None if created else alert.state
            if not created and alert.state != result.state:
                # conditional UPDATE: two concurrent checks record (and notify) one transition
                moved = FreshnessAlert.objects.filter(pk=alert.pk, state=alert.state).update(
                    state=str(result.state), changed_at=now
                )
                if not moved:
                    continue
        if result.state == Freshness.STALE and previous != Freshness.STALE:
            entry = {"project": view.project.name, "view": view.name, **result.as_dict()}
            turned_stale.append(entry)
            delivered = notify(
                "feature_view.stale",
                f"Feature view {view.project.name}/{view.name} is stale: last materialized "
                f"{result.last_materialized_end:%Y-%m-%d %H:%M} UTC, TTL {result.ttl_seconds}s",
                entry,
            )
            if delivered:
                FreshnessAlert.objects.filter(project=view.project.name, view=view.name).update(notified_at=now)
    return {"counts": counts, "turned_stale": turned_stale}
