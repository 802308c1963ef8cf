"""Single sign-on: the OIDC code flow against a tiny OpenID provider started in the test (RS256, JWKS)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.test import Client
from jwt.algorithms import RSAAlgorithm

from catalog.models import AuditEvent, Team

pytestmark = pytest.mark.django_db
CLIENT_ID, CLIENT_SECRET = "feature-portal", "s3cret"


@dataclass
class Provider:
    """A minimal OpenID provider: discovery, authorize, token, jwks, userinfo."""

    base: str = ""
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    claims: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # code -> nonce
    tokens: set[str] = field(default_factory=set)
    sign_with: Any = None  # another key: a forged id token

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        payload = {"iss": self.base, "sub": self.claims["sub"], "aud": CLIENT_ID, "iat": now, "exp": now + 300}
        return jwt.encode(
            {**payload, "nonce": nonce}, self.sign_with or self.key, algorithm="RS256", headers={"kid": "k1"}
        )


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _json(self, body: Any, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(
                    {
                        "issuer": provider.base,
                        "authorization_endpoint": f"{provider.base}/authorize",
                        "token_endpoint": f"{provider.base}/token",
                        "userinfo_endpoint": f"{provider.base}/userinfo",
                        "jwks_uri": f"{provider.base}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                )
            elif url.path == "/authorize":
                if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                    self._json({"error": "invalid_request"}, 400)
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = query.get("nonce", "")
                self.send_response(302)
                self.send_header(
                    "Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                )
                self.end_headers()
            elif url.path == "/jwks":
                jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                self._json({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in provider.tokens:
                    self._json({"error": "invalid_token"}, 401)
                    return
                self._json(provider.claims)
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            if urlsplit(self.path).path != "/token":
                self._json({"error": "not_found"}, 404)
                return
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                self._json({"error": "invalid_client"}, 401)
                return
            nonce = provider.codes.pop(form.get("code", ""), None)
            if nonce is None or form.get("grant_type") != "authorization_code":
                self._json({"error": "invalid_grant"}, 400)
                return
            access = secrets.token_urlsafe(16)
            provider.tokens.add(access)
            self._json({"access_token": access, "token_type": "Bearer", "id_token": provider.id_token(nonce)})

    return Handler


@pytest.fixture
def provider(settings: Any) -> Iterator[Provider]:
    """The provider on a free port, and the portal configured for it (as the OIDC_* env would)."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    discovery = requests.get(f"{provider.base}/.well-known/openid-configuration", timeout=5).json()
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
    settings.OIDC_ROLE_MAP = {"ml-approvers": "approver", "ml-readers": "viewer"}
    settings.OIDC_TEAM_MAP = {"grp-hr": "hr-data-platform"}
    settings.OIDC_TEAM_PREFIX = "team-"
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "portal.oidc.PortalOIDCBackend",
    ]
    yield provider
    server.shutdown()
    server.server_close()


def sso_login(client: Client, provider: Provider) -> Any:
    """Portal → provider /authorize → portal /oidc/callback/ (which calls /token, /jwks, /userinfo)."""
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.base}/authorize?")
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302
    callback = urlsplit(at_provider.headers["Location"])
    assert callback.path == "/oidc/callback/"
    return client.get(callback.path, dict(parse_qs(callback.query)))


def test_sso_login_creates_the_user_with_roles_and_teams_from_the_groups_claim(
    client: Client, provider: Provider
) -> None:
    provider.claims = {
        "sub": "u-1",
        "preferred_username": "grace",
        "email": "grace@example.com",
        "groups": ["ml-approvers", "team-people-analytics", "grp-hr", "unrelated"],
    }
    done = sso_login(client, provider)
    assert done.status_code == 302 and done["Location"] == "/"
    user = User.objects.get(username="grace")
    assert user.email == "grace@example.com" and not user.has_usable_password()
    me = client.get("/api/v1/me/").json()
    assert me["username"] == "grace" and me["auth"] == "session"
    assert me["roles"] == ["approver", "viewer"]
    assert me["teams"] == ["hr-data-platform", "people-analytics"]
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="user.sso_created", object_repr="grace").exists()


def test_the_idp_stays_the_source_of_truth_at_each_login(client: Client, provider: Provider) -> None:
    provider.claims = {"sub": "u-2", "preferred_username": "hal", "groups": ["ml-approvers", "team-a"]}
    sso_login(client, provider)
    client.logout()
    provider.claims = {"sub": "u-2", "preferred_username": "hal", "groups": ["ml-readers"]}
    sso_login(client, provider)
    hal = User.objects.get(username="hal")
    assert set(hal.groups.values_list("name", flat=True)) == {"viewer"}
    assert list(hal.teams.all()) == [] and Team.objects.filter(name="a").exists()
    synced = AuditEvent.objects.filter(action="user.sso_synced", object_repr="hal").order_by("id")
    assert [e.after["roles"] for e in synced] == [["approver"], ["viewer"]]


def test_a_forged_id_token_signs_nobody_in(client: Client, provider: Provider) -> None:
    provider.claims = {"sub": "u-3", "preferred_username": "mallory", "groups": ["ml-approvers"]}
    provider.sign_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert sso_login(client, provider).status_code == 400  # Django answers SuspiciousOperation with a 400
    assert not User.objects.filter(username="mallory").exists()
    refused = client.get("/api/v1/me/")  # still anonymous: the README promises 401, with a challenge
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"
    assert refused.has_header("WWW-Authenticate")


def test_local_accounts_keep_working_with_sso_on(client: Client, provider: Provider, viewer: User) -> None:
    assert client.login(username="vera", password="correct horse battery")
    assert client.get("/api/v1/me/").json()["roles"] == ["viewer"]


def test_sso_is_off_by_default(client: Client, settings: Any) -> None:
    assert settings.OIDC_ENABLED is False
    assert "portal.oidc.PortalOIDCBackend" not in settings.AUTHENTICATION_BACKENDS
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OIDC_ENABLED": "true"}, "OIDC_ENABLED needs OIDC_RP_CLIENT_ID"),
        ({"OIDC_ROLE_MAP": "grp=wizard"}, "OIDC_ROLE_MAP: 'wizard' is not a portal role"),
        ({"OIDC_TEAM_MAP": "nonsense"}, "OIDC_TEAM_MAP: expected idp-group=value"),
    ],
)
def test_a_bad_sso_configuration_stops_the_process_naming_the_variable(env: dict[str, str], message: str) -> None:
    import os
    import subprocess
    import sys

    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env={**os.environ, "DJANGO_SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and message in result.stderr
