"""Token management from the profile page and from manage.py create_api_token."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import ApiToken
from catalog.services.tokens import token_hash

pytestmark = pytest.mark.django_db


def test_the_profile_page_creates_a_token_shown_once_and_revokes_it(client: Client, proposer: User) -> None:
    client.force_login(proposer)
    page = client.get("/profile/")
    assert page.status_code == 200 and "No tokens yet." in page.content.decode() and "proposer" in page.content.decode()
    created = client.post("/profile/", {"name": "notebook", "scopes": ["read", "propose"], "expires_in_days": "30"})
    body = created.content.decode()
    assert created.status_code == 200
    raw = re.search(r"fpt_[0-9a-f]{8}_[A-Za-z0-9_-]+", body)
    assert raw is not None and "will not be shown again" in body
    token = ApiToken.objects.get(user=proposer)
    assert token.key_hash == token_hash(raw.group(0)) and token.scopes == ["read", "propose"]
    again = client.get("/profile/").content.decode()
    assert raw.group(0) not in again and f"fpt_{token.prefix}_…" in again
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {raw.group(0)}").get("/api/v1/me/").status_code == 200
    response = client.post(f"/profile/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and "revoked" in client.get("/profile/").content.decode()
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {raw.group(0)}").get("/api/v1/me/").status_code == 401


def test_the_profile_page_rejects_bad_input_and_other_users_tokens(
    client: Client, proposer: User, viewer: User
) -> None:
    client.force_login(proposer)
    response = client.post("/profile/", {"name": "", "scopes": ["root"], "expires_in_days": "0"})
    assert response.status_code == 400 and not ApiToken.objects.exists()
    theirs = ApiToken.objects.create(user=viewer, name="v", prefix="abcd1234", key_hash="x" * 64, scopes=["read"])
    assert client.post(f"/profile/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.get(f"/profile/tokens/{theirs.pk}/revoke/").status_code == 405
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_anonymous_visitors_are_sent_to_login(client: Client) -> None:
    response = client.get("/profile/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_command_prints_a_working_token_once(operator: User) -> None:
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token",
        "--user",
        "otto",
        "--scope",
        "read",
        "--scope",
        "operate",
        "--expires-in-days",
        "30",
        stdout=out,
        stderr=err,
    )
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(user=operator)
    assert token.key_hash == token_hash(raw) and token.scopes == ["read", "operate"] and token.expires_at is not None
    assert "not shown again" in err.getvalue()
    me = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/me/").json()
    assert me["token_scopes"] == ["read", "operate"] and "operator" in me["roles"]


def test_the_command_rejects_unknown_users_and_bad_expiry(viewer: User) -> None:
    with pytest.raises(CommandError, match="No user 'ghost'"):
        call_command("create_api_token", "--user", "ghost", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="expires_in_days"):
        call_command(
            "create_api_token", "--user", "vera", "--expires-in-days", "0", stdout=StringIO(), stderr=StringIO()
        )
    assert not ApiToken.objects.exists()


def test_the_command_takes_comma_separated_scopes_and_names_unknown_ones(operator: User) -> None:
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_token", "--user", "otto", "--scope", "read,root", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()
    call_command("create_api_token", "--user", "otto", "--scope", "read,operate", stdout=StringIO(), stderr=StringIO())
    assert ApiToken.objects.get(user=operator).scopes == ["read", "operate"]


@pytest.mark.django_db
def test_a_huge_request_body_is_a_413_that_names_the_limit(client: Client, operator: User) -> None:
    client.force_login(operator)
    body = '{"kind": "materialize", "views": ["' + "x" * (3 * 1024 * 1024) + '"]}'
    response = client.post("/api/v1/jobs/", body, content_type="application/json")
    assert response.status_code == 413
    assert "at most" in response.json()["error"]["message"]
