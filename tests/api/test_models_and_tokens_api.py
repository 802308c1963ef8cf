"""Models (consumers) and tokens through the API: scopes, roles, conflicts, throttling, query budgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from catalog.models import ApiToken, AuditEvent, CatalogObject, ModelConsumer
from catalog.services.tokens import token_hash
from tests.api.conftest import PROJECT, assert_error

pytestmark = pytest.mark.django_db
NEW_MODEL = {"project": PROJECT, "service": "attrition_model_v2", "name": "churn-xgb", "version": "3", "owner": "me"}


def test_a_proposer_token_with_propose_scope_registers_lists_and_deletes_a_model(
    synced: None, proposer: User, token_client: Callable[..., APIClient]
) -> None:
    client = token_client(proposer, ["read", "propose"])
    created = client.post("/api/v1/models/", {**NEW_MODEL, "link": "https://m.example.com/x"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["service"], body["name"], body["version"], body["created_by"]) == (
        "attrition_model_v2",
        "churn-xgb",
        "3",
        proposer.username,
    )
    listed = client.get("/api/v1/models/", {"service": "attrition_model_v2"}).json()["results"]
    assert [m["id"] for m in listed] == [body["id"]]
    assert client.get("/api/v1/models/", {"service": "attrition_model_v1"}).json()["results"] == []
    error = assert_error(client.post("/api/v1/models/", NEW_MODEL, format="json"), 409, "conflict")
    assert "churn-xgb@3" in error["message"]
    assert client.delete(f"/api/v1/models/{body['id']}/").status_code == 204
    assert not ModelConsumer.objects.exists()
    assert AuditEvent.objects.filter(action__startswith="model_consumer.").count() == 2


def test_registering_needs_the_scope_and_the_role(
    synced: None, proposer: User, viewer: User, token_client: Callable[..., APIClient]
) -> None:
    error = assert_error(token_client(proposer, ["read"]).post("/api/v1/models/", NEW_MODEL, format="json"), 403)
    assert "'propose' scope" in error["message"]
    error = assert_error(
        token_client(viewer, ["read", "propose"]).post("/api/v1/models/", NEW_MODEL, format="json"), 403, "forbidden"
    )
    assert "proposer" in error["message"]
    assert not ModelConsumer.objects.exists()


def test_bad_input_is_a_400_naming_the_field_and_unknown_services_404(
    synced: None, proposer: User, token_client: Callable[..., APIClient]
) -> None:
    client = token_client(proposer, ["read", "propose"])
    error = assert_error(client.post("/api/v1/models/", {**NEW_MODEL, "link": "nope", "name": ""}, format="json"), 400)
    assert {"link", "name"} <= set(error["details"])
    error = assert_error(client.post("/api/v1/models/", {**NEW_MODEL, "service": "ghost"}, format="json"), 404)
    assert "ghost" in error["message"]
    CatalogObject.objects.filter(name="attrition_model_v2").update(status="removed")
    assert_error(client.post("/api/v1/models/", NEW_MODEL, format="json"), 404)
    assert_error(client.post("/api/v1/models/", "not json", content_type="application/json"), 400)
    assert not ModelConsumer.objects.exists()


def test_only_the_creator_a_teammate_or_an_admin_deletes(
    synced: None, proposer: User, approver: User, admin_user: User, token_client: Callable[..., APIClient]
) -> None:
    created = token_client(proposer, ["read", "propose"]).post("/api/v1/models/", NEW_MODEL, format="json").json()
    url = f"/api/v1/models/{created['id']}/"
    assert_error(token_client(approver, ["read", "propose"]).delete(url), 403, "forbidden")
    assert_error(token_client(admin_user, ["read"]).delete(url), 403, "permission_denied")
    assert token_client(admin_user, ["read", "propose"]).delete(url).status_code == 204
    assert_error(token_client(admin_user, ["read", "propose"]).delete(url), 404)


def test_a_token_is_created_once_hashed_at_rest_used_and_revoked(viewer: User) -> None:
    session = APIClient()
    session.force_login(viewer)
    response = session.post("/api/v1/tokens/", {"name": "ci", "scopes": ["read"], "expires_in_days": 30}, format="json")
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    token = ApiToken.objects.get()
    assert (
        raw.startswith(f"fpt_{token.prefix}_") and token.key_hash == token_hash(raw) and raw not in str(token.__dict__)
    )
    assert token.expires_at is not None and token.scopes == ["read"]
    listed = session.get("/api/v1/tokens/").json()["results"]
    assert [t["prefix"] for t in listed] == [token.prefix] and "token" not in listed[0]
    program = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    me = program.get("/api/v1/me/").json()
    assert me == {
        "username": viewer.username,
        "roles": ["viewer"],
        "teams": [],
        "auth": "token",
        "token_scopes": ["read"],
    }
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert session.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert_error(program.get("/api/v1/me/"), 401, "authentication_failed")
    assert AuditEvent.objects.filter(action__in=["api_token.created", "api_token.revoked"]).count() == 2


def test_token_requests_are_validated_and_never_widen_scopes(
    viewer: User, proposer: User, token_client: Callable[..., APIClient], make_token: Callable[..., str]
) -> None:
    client = token_client(viewer, ["read"])
    error = assert_error(client.post("/api/v1/tokens/", {"name": "x", "scopes": ["root"]}, format="json"), 400)
    assert "scopes" in error["details"]
    error = assert_error(client.post("/api/v1/tokens/", {"name": "x", "expires_in_days": 0}, format="json"), 400)
    assert "expires_in_days" in error["details"]
    error = assert_error(
        client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read", "operate"]}, format="json"), 403
    )
    assert "subset" in error["message"]
    assert client.post("/api/v1/tokens/", {"name": "rotated", "scopes": ["read"]}, format="json").status_code == 201
    make_token(proposer, name="paul's")
    theirs = ApiToken.objects.get(user=proposer, name="paul's")
    assert_error(client.delete(f"/api/v1/tokens/{theirs.pk}/"), 404)
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_throttling_is_per_token_with_the_error_shape(
    viewer: User, make_token: Callable[..., str], settings: Any
) -> None:
    # No cache.clear(): the cache shares the worker's Redis database with the Feast online store.
    # Throttle keys use the token's random prefix, so each new token starts from zero.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/minute", "user": "100/minute", "anon": "100/minute"},
    }
    first = APIClient(HTTP_AUTHORIZATION=f"Bearer {make_token(viewer)}")
    second = APIClient(HTTP_AUTHORIZATION=f"Bearer {make_token(viewer, name='other')}")
    for _ in range(3):
        assert first.get("/api/v1/me/").status_code == 200
    error = assert_error(first.get("/api/v1/me/"), 429, "throttled")
    assert error["details"]["retry_after"] > 0
    assert second.get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/objects/?page_size=500",
        "/api/v1/feature-views/?tag=domain&ordering=-updated_at",
        f"/api/v1/projects/{PROJECT}/feature-services/attrition_model_v2/",
        f"/api/v1/projects/{PROJECT}/feature-views/employee_features/",
        f"/api/v1/projects/{PROJECT}/features/",
        f"/api/v1/projects/{PROJECT}/lineage/",
        f"/api/v1/projects/{PROJECT}/feature-views/employee_features/history/",
        "/api/v1/models/",
    ],
)
def test_list_and_detail_endpoints_use_a_constant_number_of_queries(
    synced: None,
    viewer: User,
    proposer: User,
    make_token: Callable[..., str],
    django_assert_max_num_queries: Any,
    url: str,
) -> None:
    from catalog.services.consumers import model_consumer_register

    service = CatalogObject.objects.get(project__name=PROJECT, name="attrition_model_v1")
    for i in range(15):
        model_consumer_register(actor=proposer, service=service, name=f"m{i}", version="1", owner="x")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {make_token(viewer)}")
    client.get("/api/v1/me/")  # last_used_at is written once a minute, not per request
    with django_assert_max_num_queries(7):
        response = client.get(url)
    assert response.status_code == 200


def test_query_counts_do_not_grow_with_the_catalog(
    synced: None, viewer: User, make_token: Callable[..., str], django_assert_max_num_queries: Any
) -> None:
    from catalog.models import Feature, LineageEdge, Project, Team

    project = Project.objects.get(name=PROJECT)
    team = Team.objects.first()
    views = CatalogObject.objects.bulk_create(
        CatalogObject(
            project=project,
            kind="feature_view",
            name=f"bulk_{i:04}",
            subkind="batch",
            team=team,
            content_hash="x",
            tags={"domain": "bulk"},
        )
        for i in range(300)
    )
    Feature.objects.bulk_create(
        Feature(view=v, name=f"f{j}", dtype="Int64", position=j) for v in views for j in range(3)
    )
    entity = CatalogObject.objects.get(project=project, kind="entity", name="employee_id")
    LineageEdge.objects.bulk_create(
        LineageEdge(project=project, kind="entity_view", upstream=entity, downstream=v) for v in views
    )
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {make_token(viewer)}")
    client.get("/api/v1/me/")
    for url in (
        "/api/v1/feature-views/?page_size=500&tag=domain:bulk",
        f"/api/v1/projects/{PROJECT}/features/?page_size=500",
        f"/api/v1/projects/{PROJECT}/lineage/",
        f"/api/v1/projects/{PROJECT}/feature-views/bulk_0007/",
    ):
        with django_assert_max_num_queries(7):
            response = client.get(url)
        assert response.status_code == 200
    assert len(client.get("/api/v1/feature-views/?page_size=500&tag=domain:bulk").json()["results"]) == 300
    assert len(client.get(f"/api/v1/projects/{PROJECT}/lineage/").json()["nodes"]) > 300


def test_the_audit_log_lists_what_happened_with_filters(
    synced: None, proposer: User, viewer: User, token_client: Callable[..., APIClient]
) -> None:
    token_client(proposer, ["read", "propose"]).post("/api/v1/models/", NEW_MODEL, format="json")
    client = token_client(viewer, ["read"])
    events = client.get("/api/v1/audit/", {"action_prefix": "model_consumer."}).json()["results"]
    assert [(e["action"], e["actor"], e["object_repr"]) for e in events] == [
        ("model_consumer.registered", proposer.username, "churn-xgb@3")
    ]
    assert events[0]["after"]["service"] == f"{PROJECT}/attrition_model_v2"
    assert client.get("/api/v1/audit/", {"actor": "nobody"}).json()["results"] == []
    newest_first = client.get("/api/v1/audit/").json()["results"]
    assert [e["id"] for e in newest_first] == sorted((e["id"] for e in newest_first), reverse=True)
    assert "since" in assert_error(client.get("/api/v1/audit/", {"since": "soon"}), 400)["details"]


def test_a_token_makes_no_token_wider_than_itself_and_revoking_it_revokes_them(viewer: User) -> None:
    """Scope and expiry no wider than the token that creates it; revoking it revokes what it made, at any
    depth; a read-only token revokes only itself."""
    from catalog.services.tokens import api_token_create

    _, raw = api_token_create(actor=viewer, user=viewer, name="parent", scopes=["read"], expires_in_days=3)
    parent = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for wider in ({}, {"expires_in_days": 4}):
        error = assert_error(parent.post("/api/v1/tokens/", {"name": "child", **wider}, format="json"), 400)
        assert "must expire by then" in error["details"]["expires_in_days"][0], error
    response = parent.post("/api/v1/tokens/", {"name": "child", "expires_in_days": 2}, format="json")
    assert response.status_code == 201, response.content
    child = APIClient(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    response = child.post("/api/v1/tokens/", {"name": "grandchild", "expires_in_days": 1}, format="json")
    assert response.status_code == 201, response.content
    grandchild = APIClient(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert ApiToken.objects.get(name="grandchild").parent == ApiToken.objects.get(name="child")

    # A read-only token may not revoke its user's other tokens (a leaked one could lock them out)...
    other = ApiToken.objects.get(name="child")
    error = assert_error(grandchild.delete(f"/api/v1/tokens/{other.pk}/"), 403)
    assert "revoke only itself" in error["message"]
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None
    # ...and revoking the parent (from the browser session) revokes the tokens it made, at any depth.
    session = APIClient()
    session.force_login(viewer)
    assert session.delete(f"/api/v1/tokens/{ApiToken.objects.get(name='parent').pk}/").status_code == 204
    for client in (parent, child, grandchild):
        assert_error(client.get("/api/v1/me/"), 401, "authentication_failed")
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 3
