"""Catalog pages: object pages with history and diffs, project pages, the catalog as of a date."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from catalog import feast_gateway
from catalog.models import ObjectVersion
from catalog.timeparse import NotAnInstant, parse_instant
from tests.catalog.test_sync import _edit, sync_one
from tests.conftest import run_feast

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef) -> None:
    assert sync_one().status == "succeeded"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/projects/employee_attrition/feature-views/employee_features/",
            ["career_velocity", "people-analytics", "employee_attrition"],
        ),
        (
            "/projects/employee_attrition/feature-services/attrition_model_v2/",
            ["employee_features:overall_satisfaction", "employee_risk_signals:review_overdue"],
        ),
        ("/projects/employee_attrition/entities/employee_id/", ["Join keys", "Int64"]),
        ("/projects/employee_attrition/data-sources/scoring_request/", ["months_since_last_review", "request"]),
        ("/projects/employee_attrition/", ["attrition_model_v1", "employee_activity_push"]),
    ],
)
def test_object_pages_render_with_a_bounded_number_of_queries(
    client: Client, viewer: Any, synced: None, path: str, expected: list[str], django_assert_max_num_queries: Any
) -> None:
    client.force_login(viewer)
    # A constant per page, never one per feature or edge (a feature view's page: 16 with the on-demand readers
    # of its fields, which decide what "Remove a field" may offer).
    with django_assert_max_num_queries(16):
        response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    for text in expected:
        assert text in body


def test_the_service_page_shows_the_vector_in_canonical_order(client: Client, viewer: Any, synced: None) -> None:
    client.force_login(viewer)
    body = client.get("/projects/employee_attrition/feature-services/attrition_model_v2/").content.decode()
    refs = [
        "employee_features:overall_satisfaction",
        "employee_features:tenure",
        "employee_features:overtime",
        "department_features:attrition_rate_90d",
        "department_features:avg_satisfaction",
        "employee_risk_signals:satisfaction_x_overtime",
        "employee_risk_signals:review_overdue",
    ]
    positions = [body.index(r) for r in refs]
    assert positions == sorted(positions)


def test_history_and_diff_of_two_versions(
    client: Client, viewer: Any, editable_demo_repo: feast_gateway.RepoRef
) -> None:
    sync_one()
    _edit(editable_demo_repo.path / "features.py", "ttl=timedelta(days=45)", "ttl=timedelta(days=30)")
    run_feast(editable_demo_repo, "apply")
    sync_one()
    client.force_login(viewer)
    url = "/projects/employee_attrition/feature-views/department_features/"
    body = client.get(url, {"from": 1, "to": 2}).content.decode()
    assert "v1 → v2" in body and "3888000s" in body and "2592000s" in body and "out-of-band" in body
    bad = client.get(url, {"from": 1, "to": 7}).content.decode()
    assert "Pick two versions this object has." in bad


def test_catalog_as_of_a_date(client: Client, viewer: Any, synced: None) -> None:
    ObjectVersion.objects.update(recorded_at=timezone.now() - timedelta(days=2))
    client.force_login(viewer)
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    body = client.get("/catalog/as-of/", {"at": yesterday}).content.decode()
    assert "15 objects existed" in body
    long_ago = client.get(
        "/catalog/as-of/", {"at": (timezone.now() - timedelta(days=365 * 25)).date().isoformat()}
    ).content.decode()
    assert "The catalog held nothing at that time" in long_ago
    assert "is not a date" in client.get("/catalog/as-of/", {"at": "last tuesday"}).content.decode()


def test_a_bare_date_is_the_same_instant_in_the_browser_and_the_api(client: Client, viewer: Any, synced: None) -> None:
    """One parser (catalog.timeparse): "as of 2026-11-01" is that day's end on the page and in the API alike.
    Every object was recorded early today: as of today, both show all of them."""
    today = timezone.now().astimezone(UTC).date()
    ObjectVersion.objects.update(recorded_at=datetime.combine(today, time(0, 0, 1), tzinfo=UTC))
    client.force_login(viewer)
    body = client.get("/catalog/as-of/", {"at": today.isoformat()}).content.decode()
    assert "15 objects existed" in body
    api = client.get("/api/v1/objects/", {"as_of": today.isoformat(), "page_size": 100}).json()
    assert len(api["results"]) == 15 and api["next"] is None
    assert parse_instant(today.isoformat(), date_means="end") == datetime.combine(today, time.max, tzinfo=UTC)
    assert parse_instant(today.isoformat()) == datetime.combine(today, time.min, tzinfo=UTC)
    noon_east = datetime.combine(today, time(12), tzinfo=timezone.get_fixed_timezone(120))
    assert parse_instant(noon_east.isoformat()) == noon_east.astimezone(UTC)
    with pytest.raises(NotAnInstant):
        parse_instant("last tuesday")


def test_unknown_objects_are_404_and_anonymous_users_go_to_login(client: Client, viewer: Any, synced: None) -> None:
    assert client.get("/projects/employee_attrition/").status_code == 302
    client.force_login(viewer)
    assert client.get("/projects/nope/").status_code == 404
    assert client.get("/projects/employee_attrition/feature-views/nope/").status_code == 404
    assert client.get("/projects/employee_attrition/widgets/employee_features/").status_code == 404


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (604800, "7 days"),
        (5400, "1 hour 30 minutes"),
        (1, "1 second"),
        (None, "—"),
        (0, "no expiry"),
        (90061, "1 day 1 hour"),
    ],
)
def test_ttls_read_like_durations(seconds: int | None, text: str) -> None:
    from catalog.templatetags.catalog_extras import seconds_human

    assert seconds_human(seconds) == text
