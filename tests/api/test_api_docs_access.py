"""Who may read the OpenAPI schema and the docs page: signed-in users and `read` tokens; anyone with API_DOCS_PUBLIC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db
SCHEMA = "/api/v1/schema/?format=json"
DOCS = "/api/v1/docs/"


def test_anonymous_users_get_a_401_for_the_schema_and_the_sign_in_page_for_the_docs() -> None:
    client = Client()
    schema = client.get(SCHEMA)
    assert schema.status_code == 401
    assert schema.json()["error"]["code"] == "not_authenticated"
    docs = client.get(DOCS)
    assert docs.status_code == 302 and docs["Location"] == "/accounts/login/?next=/api/v1/docs/"


def test_signed_in_users_of_any_role_and_read_tokens_get_both(
    viewer: User, outsider: User, make_token: Callable[..., str]
) -> None:
    for user in (viewer, outsider):  # the schema describes endpoints, never data: no role is needed
        client = Client()
        client.force_login(user)
        assert client.get(SCHEMA).json()["info"]["title"] == "Feature Portal API"
        assert b"swagger-ui" in client.get(DOCS).content
    read = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(viewer, ['read'])}")
    assert read.get(SCHEMA).status_code == 200
    propose_only = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(viewer, ['propose'])}")
    refused = propose_only.get(SCHEMA)
    assert refused.status_code == 403 and "'read' scope" in refused.json()["error"]["message"]


def test_api_docs_public_serves_both_to_anonymous_users(settings: Any) -> None:
    settings.API_DOCS_PUBLIC = True
    client = Client()
    assert client.get(SCHEMA).json()["openapi"].startswith("3.")
    docs = client.get(DOCS)
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
