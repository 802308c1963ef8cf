"""The interactive API docs render in real Chromium from the portal's own static files (no CDN)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.browser_fixtures import login, shot

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_renders_every_catalog_operation_offline(live_server: Any, page: Any, viewer: User) -> None:
    outside: list[str] = []

    def only_the_portal(route: Any) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:  # a CDN or any other host: blocked and recorded
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_portal)
    login(page, live_server.url, "vera")
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .information-container .title", timeout=30_000)
    assert "Feature Portal API" in page.inner_text(".swagger-ui .information-container .title")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/api/v1/feature-views/", "/api/v1/projects/{project}/feature-services/{name}/", "/api/v1/search/"} <= {
        p.replace("\u200b", "") for p in paths
    }
    shot(page, "api-docs")
    assert outside == []
