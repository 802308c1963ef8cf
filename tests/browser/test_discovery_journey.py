"""The data scientist's journey: sign in, find `tenure` by typing `tenur`, open its view and service, follow lineage."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import feast_gateway
from tests.browser_fixtures import login, shot
from tests.catalog.test_sync import sync_one

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def synced_live(demo_repo: feast_gateway.RepoRef, live_server: Any) -> str:
    assert sync_one().status == "succeeded"
    return str(live_server.url)


def test_find_a_feature_follow_it_to_its_service_and_lineage(page: Any, viewer: Any, synced_live: str) -> None:
    base = synced_live
    login(page, base, viewer.username)
    shot(page, "journey-01-dashboard")

    # Type-ahead: `tenur` suggests `tenure`; pick it.
    page.fill("#header-search", "tenur")
    suggestion = page.locator("#suggestions a", has_text="tenure").first
    suggestion.wait_for()
    shot(page, "journey-02-typeahead")
    suggestion.click()
    page.wait_for_url("**/feature-views/employee_features/features/tenure/")
    assert page.locator("h1").inner_text() == "tenure"
    shot(page, "journey-03-feature")

    # Its view: schema in declared order.
    page.click("dd a:text-is('employee_features')")
    page.wait_for_url("**/feature-views/employee_features/")
    schema = page.locator("table:has(th:text-is('Position')) tbody tr td:nth-child(2)").all_inner_texts()
    assert [s.split()[0] for s in schema] == [
        "tenure",
        "salary_band",
        "overtime",
        "promotion_stagnation",
        "career_velocity",
        "overall_satisfaction",
    ]
    shot(page, "journey-04-view")

    # The service that uses it: the vector exactly as the model sees it.
    page.click("a:text-is('attrition_model_v1')")
    page.wait_for_url("**/feature-services/attrition_model_v1/")
    rows = page.locator("table:has(th:text-is('Feature reference')) tbody tr")
    indexes = [int(t) for t in rows.locator("td:nth-child(1)").all_inner_texts()]
    refs = rows.locator("td:nth-child(2)").all_inner_texts()
    assert indexes == list(range(6))
    assert refs[0] == "employee_features:tenure" and refs[5] == "employee_features:overall_satisfaction"
    shot(page, "journey-05-service")

    # Lineage, focused on the service; click through to the data source upstream.
    page.click("#lineage-graph-link")
    page.wait_for_url("**/lineage/?focus=feature_service:attrition_model_v1")
    page.locator("#lineage-graph .main-svg").first.wait_for()
    shot(page, "journey-06-lineage")
    label = page.locator("#lineage-graph g.textpoint text", has_text="employee_attrition").first
    box = label.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 10)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] - 10)
    page.wait_for_url("**/data-sources/employee_attrition/")
    assert "employee_attrition" in page.locator("h1").inner_text()
    shot(page, "journey-07-source")
