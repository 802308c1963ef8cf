"""API fixtures: a synced demo catalog, tokens per role and scope, clients that speak JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from catalog import feast_gateway
from tests.catalog.test_sync import sync_one

PROJECT = "employee_attrition"


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef) -> None:
    """The demo project mirrored into the catalog."""
    assert sync_one().status == "succeeded"


@pytest.fixture
def make_token(db: None) -> Callable[..., str]:
    """make_token(user, scopes=["read"], **kw) -> the raw token (shown once)."""
    from catalog.services.tokens import api_token_create

    def make(user: User, scopes: list[str] | None = None, **kwargs: Any) -> str:
        _, raw = api_token_create(
            actor=user, user=user, name=kwargs.pop("name", "test"), scopes=scopes or ["read"], **kwargs
        )
        return raw

    return make


@pytest.fixture
def token_client(make_token: Callable[..., str]) -> Callable[..., APIClient]:
    """token_client(user, scopes) -> an APIClient sending `Authorization: Bearer <token>`."""

    def make(user: User, scopes: list[str] | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, scopes)}")
        return client

    return make


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the API's error shape with this status (and code)."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error
