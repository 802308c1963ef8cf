"""Freshness: fresh/stale/never per view, and the stale webhook fires once per transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.freshness import Freshness, freshness
from catalog.models import CatalogObject
from catalog.notifications import notify
from catalog.services.sync import registry_sync
from jobs.models import FreshnessAlert
from jobs.services.freshness import freshness_check
from jobs.tasks import freshness_check_task
from tests.jobs.conftest import Receiver

NOW = datetime.now(UTC)  # freshness() takes its clock as an argument: any instant will do


def test_freshness_states() -> None:
    week = 7 * 24 * 3600
    assert freshness(last_materialized_end=None, ttl_seconds=week, now=NOW).state == Freshness.NEVER
    fresh = freshness(last_materialized_end=NOW - timedelta(days=6), ttl_seconds=week, now=NOW)
    assert fresh.state == Freshness.FRESH and fresh.stale_at == NOW + timedelta(days=1)
    assert fresh.age_ratio == pytest.approx(6 / 7)
    stale = freshness(last_materialized_end=NOW - timedelta(days=8), ttl_seconds=week, now=NOW)
    assert stale.state == Freshness.STALE and stale.age_seconds == 8 * 24 * 3600
    # Feast's TTL 0 means "never expires"
    assert freshness(last_materialized_end=NOW - timedelta(days=900), ttl_seconds=0, now=NOW).state == Freshness.FRESH


def test_notify_posts_slack_json_and_never_raises(webhook: type[Receiver], settings: Any) -> None:
    assert notify("materialization.failed", "it broke", {"view": "v", "rows": 3})
    assert webhook.received[0]["text"] == "it broke" and webhook.received[0]["fields"] == {"view": "v", "rows": 3}
    webhook.status = 500
    assert not notify("x", "y", {})
    settings.PORTAL_WEBHOOK_URL = "http://127.0.0.1:1/nothing-listens"
    assert not notify("x", "y", {})
    settings.PORTAL_WEBHOOK_URL = ""
    assert not notify("x", "y", {})


@pytest.mark.clock
def test_a_view_that_turns_stale_is_alerted_once(
    demo_repo: feast_gateway.RepoRef, db: None, webhook: type[Receiver]
) -> None:
    assert registry_sync(project="employee_attrition", trigger="test", force=True)[0].status == "succeeded"
    activity = CatalogObject.objects.get(kind="feature_view", name="employee_activity")
    assert activity.ttl_seconds == 2 * 24 * 3600 and activity.last_materialized_end is not None
    end = activity.last_materialized_end

    result = freshness_check(now=end + timedelta(hours=1))
    assert result["counts"]["fresh"] == 3 and not result["turned_stale"] and not webhook.received

    stale_at = end + timedelta(days=3)  # employee_activity's TTL is 2 days; the others' are longer
    result = freshness_check(now=stale_at)
    assert [t["view"] for t in result["turned_stale"]] == ["employee_activity"]
    assert len(webhook.received) == 1 and webhook.received[0]["event"] == "feature_view.stale"
    assert FreshnessAlert.objects.get(view="employee_activity").notified_at == stale_at

    assert not freshness_check(now=stale_at + timedelta(minutes=5))["turned_stale"]  # still stale: no repeat
    assert len(webhook.received) == 1
    freshness_check(now=end + timedelta(hours=2))  # fresh again (e.g. after a materialization)
    assert freshness_check(now=stale_at)["turned_stale"]  # and stale again: a new alert
    assert len(webhook.received) == 2


@pytest.mark.clock
def test_the_beat_task_reports_counts(demo_repo: feast_gateway.RepoRef, db: None) -> None:
    registry_sync(project="employee_attrition", trigger="test", force=True)
    counts = freshness_check_task()["counts"]
    assert sum(counts.values()) == 3 and counts["never"] == 0


@pytest.mark.clock
def test_the_freshness_panel_lists_online_views(
    client: Client, viewer: Any, demo_repo: feast_gateway.RepoRef, db: None
) -> None:
    registry_sync(project="employee_attrition", trigger="test", force=True)
    client.force_login(viewer)
    page = client.get("/jobs/freshness/")
    assert page.status_code == 200
    for view in ("employee_features", "department_features", "employee_activity"):
        assert f'data-view="employee_attrition/{view}"'.encode() in page.content
    assert b"employee_risk_signals" not in page.content  # on-demand: never materialized
