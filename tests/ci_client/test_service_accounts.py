"""Machine tokens: service accounts are users that never sign in and hold ordinary API tokens; only admins create,
re-key and deactivate them (API or manage.py); their tokens never approve; everything is audited."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from catalog.models import ApiToken, AuditEvent
from catalog.services.tokens import api_token_create

pytestmark = pytest.mark.django_db

NEW = {"name": "ci-people", "role": "proposer", "teams": ["people-analytics"], "scopes": ["read", "propose"]}


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def admin_api(people: dict[str, User]) -> APIClient:
    _, raw = api_token_create(actor=people["admin"], user=people["admin"], name="a", scopes=["read", "operate"])
    return bearer(raw)


def test_an_admin_creates_a_service_account_whose_token_acts_as_it(people: dict[str, User]) -> None:
    api = admin_api(people)
    created = api.post("/api/v1/service-accounts/", NEW, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["role"], body["teams"], body["is_active"]) == (
        "ci-people",
        "proposer",
        ["people-analytics"],
        True,
    )
    raw = body["token"]["token"]
    assert raw.startswith("fpt_") and body["token"]["scopes"] == ["read", "propose"]
    me = bearer(raw).get("/api/v1/me/").json()
    assert (me["username"], me["roles"], me["teams"], me["auth"]) == (
        "ci-people",
        ["proposer", "viewer"],
        ["people-analytics"],
        "token",
    )
    account = User.objects.get(username="ci-people")
    assert not account.has_usable_password()  # it never signs in
    assert not APIClient().login(username="ci-people", password="")
    events = AuditEvent.objects.filter(actor=people["admin"]).values_list("action", flat=True)
    assert {"service_account.created", "api_token.created"} <= set(events)
    listed = api.get("/api/v1/service-accounts/").json()
    assert [a["name"] for a in listed] == ["ci-people"]
    assert listed[0]["tokens"][0]["prefix"] == body["token"]["prefix"]
    assert "token" not in listed[0]["tokens"][0]  # never the secret again


def test_only_admins_manage_service_accounts_and_tokens_never_approve(people: dict[str, User]) -> None:
    _, raw = api_token_create(actor=people["operator"], user=people["operator"], name="o", scopes=["read", "operate"])
    operator = bearer(raw)
    assert operator.post("/api/v1/service-accounts/", NEW, format="json").status_code == 403
    assert operator.get("/api/v1/service-accounts/").status_code == 403
    api = admin_api(people)
    approving = api.post("/api/v1/service-accounts/", {**NEW, "scopes": ["read", "approve"]}, format="json")
    assert approving.status_code == 400
    as_admin = api.post("/api/v1/service-accounts/", {**NEW, "role": "admin"}, format="json")
    assert as_admin.status_code == 400
    assert not User.objects.filter(username="ci-people").exists()
    assert api.post("/api/v1/service-accounts/", NEW, format="json").status_code == 201
    assert api.post("/api/v1/service-accounts/", NEW, format="json").status_code == 409  # the name is taken


def test_tokens_are_rotated_and_revoked_and_deactivation_revokes_them_all(people: dict[str, User]) -> None:
    api = admin_api(people)
    first = api.post("/api/v1/service-accounts/", NEW, format="json").json()["token"]
    second = api.post("/api/v1/service-accounts/ci-people/tokens/", {"name": "rotated", "scopes": ["read"]})
    assert second.status_code == 201, second.json()
    revoke = api.delete(f"/api/v1/service-accounts/ci-people/tokens/{first['id']}/")
    assert revoke.status_code == 204
    assert bearer(first["token"]).get("/api/v1/me/").status_code == 401
    assert bearer(second.json()["token"]).get("/api/v1/me/").status_code == 200
    gone = api.delete("/api/v1/service-accounts/ci-people/")
    assert gone.status_code == 200 and gone.json()["is_active"] is False
    assert bearer(second.json()["token"]).get("/api/v1/me/").status_code == 401
    assert not ApiToken.objects.filter(user__username="ci-people", revoked_at__isnull=True).exists()
    actions = list(AuditEvent.objects.filter(actor=people["admin"]).values_list("action", flat=True))
    assert actions.count("api_token.revoked") == 2 and "service_account.deactivated" in actions
    # A person's tokens are not managed here.
    assert api.post(f"/api/v1/service-accounts/{people['author'].username}/tokens/", {"name": "x"}).status_code == 404


def test_the_command_creates_rekeys_lists_and_deactivates(people: dict[str, User]) -> None:
    out = io.StringIO()
    call_command(
        "service_account",
        "create",
        "ci-ops",
        "--role",
        "operator",
        "--scope",
        "read,propose,operate",
        stdout=out,
        stderr=io.StringIO(),
    )
    raw = out.getvalue().strip()
    assert bearer(raw).get("/api/v1/me/").json()["roles"] == ["operator", "viewer"]
    out = io.StringIO()
    call_command("service_account", "token", "ci-ops", "--scope", "read", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip().startswith("fpt_")
    listing = io.StringIO()
    call_command("service_account", "list", stdout=listing)
    assert listing.getvalue().startswith("ci-ops\tactive\t")
    with pytest.raises(CommandError, match="never approve"):
        call_command("service_account", "token", "ci-ops", "--scope", "approve", stdout=io.StringIO())
    call_command("service_account", "deactivate", "ci-ops", stderr=io.StringIO())
    assert bearer(raw).get("/api/v1/me/").status_code == 401
    with pytest.raises(CommandError, match="No service account"):
        call_command("service_account", "deactivate", people["author"].username, stderr=io.StringIO())
    assert AuditEvent.objects.filter(action="service_account.created", actor_name="system").exists()
