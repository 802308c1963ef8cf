"""Token authentication for programs: `Authorization: Bearer fpt_<prefix>_<secret>` (or `Token ...`)."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from catalog.models import ApiToken
from catalog.services.tokens import token_hash, token_split

KEYWORDS = (b"bearer", b"token")
# last_used_at is written at most this often per token: one UPDATE per minute, not per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticates API tokens; `request.auth` is the ApiToken (its scopes narrow the user's roles)."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token.") from exc
        return self.authenticate_token(raw)

    def authenticate_token(self, raw: str) -> tuple[Any, ApiToken]:
        """The (user, token) pair for a raw token, or AuthenticationFailed."""
        parts = token_split(raw)
        if parts is None:
            raise exceptions.AuthenticationFailed("Malformed token.")
        token = ApiToken.objects.select_related("user").filter(prefix=parts[0]).first()
        if token is None or not hmac.compare_digest(token.key_hash, token_hash(raw)):
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("Token expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes unauthenticated requests 401 (with WWW-Authenticate) rather than 403.
        return 'Bearer realm="api"'


class ApiTokenAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents the token scheme in the OpenAPI schema."""

    target_class = "catalog.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "fpt_<prefix>_<secret>",
            "description": "An API token from your profile page or `manage.py create_api_token`.",
        }
