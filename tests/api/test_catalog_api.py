"""Every catalog endpoint × role: anonymous 401, missing scope 403, no role 403, invisible 404, readers 200."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from catalog.models import CatalogObject, ModelConsumer
from catalog.services.consumers import model_consumer_register
from tests.api.conftest import PROJECT, assert_error

pytestmark = pytest.mark.django_db

P = f"/api/v1/projects/{PROJECT}"
CATALOG_GETS = [
    "/api/v1/objects/",
    "/api/v1/entities/",
    "/api/v1/data-sources/",
    "/api/v1/feature-views/",
    "/api/v1/feature-services/",
    "/api/v1/projects/",
    f"{P}/",
    f"{P}/objects/",
    f"{P}/entities/",
    f"{P}/entities/employee_id/",
    f"{P}/data-sources/",
    f"{P}/data-sources/employee_attrition/",
    f"{P}/feature-views/",
    f"{P}/feature-views/employee_features/",
    f"{P}/feature-services/",
    f"{P}/feature-services/attrition_model_v2/",
    f"{P}/features/?view=employee_features",
    f"{P}/lineage/",
    f"{P}/feature-views/employee_features/history/",
    f"{P}/feature-views/employee_features/versions/1/",
    f"{P}/feature-views/employee_features/diff/?from=1&to=1",
    "/api/v1/models/",
    "/api/v1/models/{model}/",
    "/api/v1/search/?q=tenure",
    "/api/v1/audit/?action_prefix=model_consumer.",
]
PERSONAL_GETS = ["/api/v1/me/", "/api/v1/tokens/"]
INVISIBLE = [
    "/api/v1/projects/nope/",
    "/api/v1/projects/nope/lineage/",
    "/api/v1/projects/nope/features/",
    "/api/v1/projects/nope/feature-views/",
    f"{P}/entities/nope/",
    f"{P}/data-sources/nope/",
    f"{P}/feature-views/nope/",
    f"{P}/feature-services/employee_features/",  # a view is not a service
    f"{P}/feature-views/nope/history/",
    f"{P}/feature-views/employee_features/versions/99/",
    f"{P}/feature-views/employee_features/diff/?from=1&to=9",
    f"{P}/things/employee_features/history/",
    "/api/v1/models/999999/",
]
ROLES = ["viewer", "proposer", "approver", "operator", "admin_user"]


@pytest.fixture
def model(synced: None, proposer: User) -> ModelConsumer:
    service = CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name="attrition_model_v2")
    return model_consumer_register(actor=proposer, service=service, name="churn", version="1", owner="me")


def urls(model: ModelConsumer, paths: list[str]) -> list[str]:
    return [p.replace("{model}", str(model.pk)) for p in paths]


def test_anonymous_requests_are_401_everywhere(model: ModelConsumer) -> None:
    client = APIClient()
    for url in urls(model, CATALOG_GETS + PERSONAL_GETS + INVISIBLE):
        error = assert_error(client.get(url), 401, "not_authenticated")
        assert "credentials" in error["message"].lower(), url
    assert_error(client.post("/api/v1/models/", {}, format="json"), 401)
    assert_error(client.delete(f"/api/v1/models/{model.pk}/"), 401)
    assert_error(client.post("/api/v1/tokens/", {"name": "x"}, format="json"), 401)


def test_a_bad_malformed_revoked_or_expired_token_is_401(
    model: ModelConsumer, viewer: User, make_token: Callable[..., str]
) -> None:
    from catalog.models import ApiToken
    from catalog.services.tokens import api_token_revoke

    good = make_token(viewer)
    cases = {
        "Bearer nonsense": "Malformed token",
        f"Bearer {good[:-2]}xx": "Invalid token",
        "Bearer fpt_deadbeef_secret": "Invalid token",
        "Bearer a b": "Malformed Authorization header",
    }
    for header, message in cases.items():
        error = assert_error(APIClient(HTTP_AUTHORIZATION=header).get("/api/v1/objects/"), 401, "authentication_failed")
        assert message in error["message"], header
    token = ApiToken.objects.get(user=viewer)
    api_token_revoke(actor=viewer, token=token)
    assert "revoked" in assert_error(APIClient(HTTP_AUTHORIZATION=f"Bearer {good}").get("/api/v1/me/"), 401)["message"]
    expired = make_token(viewer, expires_in_days=1)
    from datetime import timedelta

    from django.utils import timezone

    ApiToken.objects.filter(revoked_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert (
        "expired" in assert_error(APIClient(HTTP_AUTHORIZATION=f"Bearer {expired}").get("/api/v1/me/"), 401)["message"]
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_endpoint_with_a_read_token(
    model: ModelConsumer, role: str, request: pytest.FixtureRequest, token_client: Callable[..., APIClient]
) -> None:
    client = token_client(request.getfixturevalue(role), ["read"])
    for url in urls(model, CATALOG_GETS + PERSONAL_GETS):
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_with_a_session(model: ModelConsumer, role: str, request: pytest.FixtureRequest) -> None:
    client = APIClient()
    client.force_login(request.getfixturevalue(role))
    for url in urls(model, CATALOG_GETS + PERSONAL_GETS):
        assert client.get(url).status_code == 200, url


def test_a_token_without_the_read_scope_is_403_on_reads(
    model: ModelConsumer, operator: User, token_client: Callable[..., APIClient]
) -> None:
    client = token_client(operator, ["operate", "propose"])
    for url in urls(model, CATALOG_GETS + PERSONAL_GETS + INVISIBLE):
        error = assert_error(client.get(url), 403, "permission_denied")
        assert "'read' scope" in error["message"], url


def test_a_signed_in_user_without_a_role_is_403_on_the_catalog(
    model: ModelConsumer, outsider: User, token_client: Callable[..., APIClient]
) -> None:
    client = token_client(outsider, ["read", "propose"])
    for url in urls(model, CATALOG_GETS + INVISIBLE):
        assert_error(client.get(url), 403, "permission_denied")
    for url in PERSONAL_GETS:
        assert client.get(url).status_code == 200
    assert client.get("/api/v1/me/").json()["roles"] == []


@pytest.mark.parametrize("role", ["viewer", "admin_user"])
def test_what_a_reader_may_not_see_is_404(
    model: ModelConsumer, role: str, request: pytest.FixtureRequest, token_client: Callable[..., APIClient]
) -> None:
    client = token_client(request.getfixturevalue(role), ["read"])
    for url in urls(model, INVISIBLE):
        error = assert_error(client.get(url), 404, "not_found")
        assert error["message"] != "", url
    assert "No feature view nope in project" in client.get(f"{P}/feature-views/nope/").json()["error"]["message"]


def test_unknown_methods_are_405_in_the_error_shape(model: ModelConsumer, viewer: User) -> None:
    client = APIClient()
    client.force_login(viewer)
    assert_error(client.put(f"{P}/feature-views/employee_features/", {}, format="json"), 405, "method_not_allowed")
    assert_error(client.post("/api/v1/objects/", {}, format="json"), 405)


def test_errors_outside_the_views_keep_the_json_shape_under_api(viewer: User, client: Any) -> None:
    api = APIClient()
    api.force_login(viewer)
    assert_error(api.get("/api/v1/no-such-endpoint/"), 404, "not_found")
    assert_error(api.get("/api/v1/objects/", HTTP_HOST="evil example"), 400, "bad_request")
    html = client.get("/no-such-page/")
    assert html.status_code == 404 and html["Content-Type"].startswith("text/html")
