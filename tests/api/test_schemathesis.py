"""Schemathesis against the live OpenAPI schema, with a token: no 5xx, no schema violations.

Bounded: a few examples per operation (positive, negative, and with a real project), so the run takes
well under a minute. Covers every catalog operation and the jobs API's reads (tags below); starting
jobs is left to the jobs tests, and token revocation would revoke the run's own token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.checks
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.checks import CHECKS
from schemathesis.generation import GenerationMode

from tests.api.conftest import PROJECT

pytestmark = pytest.mark.django_db
TAGS = {"catalog", "history", "lineage", "models", "tokens", "search", "audit", "jobs", "change requests", "teams"}
READ_ONLY_TAGS = {"jobs"}  # starting jobs (POST) is left to the jobs tests: it enqueues real work
SKIP = {("DELETE", "/api/v1/tokens/{id}/")}
MAX_EXAMPLES = 8
# Every schemathesis check (`--checks all`) but this one, whose premise the API rightly refuses: a pagination
# cursor is an opaque string the API handed out, so a made-up one that fits the schema's `string` is a 400.
EXCLUDED_CHECKS = {"positive_data_acceptance"}


def test_the_schema_is_served_and_documents_the_error_shape(viewer: User) -> None:
    client = APIClient()
    client.force_authenticate(viewer)
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    detail = schema["paths"]["/api/v1/projects/{project}/feature-services/{name}/"]["get"]
    assert {"200", "400", "401", "403", "404", "429"} <= set(detail["responses"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    assert schema["components"]["schemas"]["Error"]["properties"]["error"]["$ref"].endswith("ErrorBody")
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "delete", "put", "patch") and set(operation.get("tags", [])) & (
                TAGS - READ_ONLY_TAGS
            ):
                assert operation.get("summary") and operation.get("description"), (method, path)


def test_the_schema_generates_without_a_warning(tmp_path: Any) -> None:
    """drf-spectacular skips a view it cannot describe with only a warning: every endpoint must be in the docs."""
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    for action in ("approve", "override", "reject", "submit", "withdraw", "comment", "revise", "apply"):
        assert f"/api/v1/change-requests/{{id}}/{action}/:" in schema, action


def test_the_docs_page_serves_swagger_ui_from_static_files_not_a_cdn(viewer: User) -> None:
    client = APIClient()
    client.force_login(viewer)
    body = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui-bundle" in body and "/static/vendor/swagger-ui-5.35.0/" in body
    assert "cdn." not in body and "unpkg" not in body and "https://" not in body.split("<body>")[0]
    assets = re.findall(r'(?:src|href)="(/static/vendor/swagger-ui-5\.35\.0/[^"]+)"', body)
    assert {a.rsplit("/", 1)[1].split(".")[0] for a in assets} >= {"swagger-ui-bundle", "swagger-ui"}
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        b"".join(served.streaming_content if served.streaming else [served.content])


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
    synced: None, admin_user: User, make_token: Callable[..., str], settings: Any, proposer: User
) -> None:
    from catalog.models import CatalogObject
    from catalog.services.consumers import model_consumer_register

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100000/minute", "user": "100000/minute", "anon": "100000/minute"},
    }
    service = CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name="attrition_model_v1")
    model_consumer_register(actor=proposer, service=service, name="churn", version="1", owner="x")
    headers = {"Authorization": f"Bearer {make_token(admin_user, ['read', 'propose', 'approve', 'operate'])}"}
    with wsgi_in_test_transaction():
        ran = _run_schemathesis(headers)
    assert ran >= 25


@contextmanager
def wsgi_in_test_transaction() -> Iterator[None]:
    """Serve the real WSGI app inside the test's transaction (as Django's test client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _run_schemathesis(headers: dict[str, str]) -> int:
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application(), headers=headers)
    checks = [check for check in CHECKS.get_all() if check.__name__ not in EXCLUDED_CHECKS]
    assert {"not_a_server_error", "response_schema_conformance", "negative_data_rejection", "ignored_auth"} <= {
        check.__name__ for check in checks
    }
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (
            not set(operation.definition.raw.get("tags", [])) & TAGS
            or (operation.method.upper(), operation.path) in SKIP
            or (set(operation.definition.raw.get("tags", [])) <= READ_ONLY_TAGS and operation.method.upper() != "GET")
        ):
            continue
        ran += 1
        params = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}
        negative = operation.as_strategy(GenerationMode.NEGATIVE)
        pinned = {"project": PROJECT} if "project" in params else None
        strategies = [
            operation.as_strategy(),
            negative,
            *([operation.as_strategy(path_parameters=pinned)] if pinned else []),
        ]
        for strategy in strategies:

            @given(case=strategy)
            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,  # the same examples on every run and day: a failure is a change, never luck
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=checks)

            run()
    return ran
