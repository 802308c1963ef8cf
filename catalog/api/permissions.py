"""DRF permission classes: token scopes and portal roles (the predicates live in catalog.permissions).

Conventions for every /api/v1/ view (catalog's and jobs'):
- `IsAuthenticated` first: anonymous requests get 401.
- `TokenHasScope`: a token needs `read` for safe methods; for other methods the view's
  `required_scopes = {"POST": "propose", ...}` names the scope (default: `operate`). Session
  requests carry no token and skip this check: the user's roles decide.
- Role checks (`CatalogReader`, or a view's own class using catalog.permissions predicates) give 403.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from catalog.models import ApiToken
from catalog.permissions import can_view_catalog

DEFAULT_UNSAFE_SCOPE = ApiToken.Scope.OPERATE


def required_scope(request: Request, view: Any) -> str:
    """The token scope a request needs."""
    declared: dict[str, str] = getattr(view, "required_scopes", {}) or {}
    if request.method in declared:
        return declared[request.method]
    if request.method in SAFE_METHODS:
        return ApiToken.Scope.READ
    return DEFAULT_UNSAFE_SCOPE


class TokenHasScope(BasePermission):
    """Requests made with an API token need the scope the method requires."""

    message = "This token lacks the required scope."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        scope = required_scope(request, view)
        if token.has_scope(scope):
            return True
        self.message = f"This token lacks the '{scope}' scope."
        return False


class CatalogReader(BasePermission):
    """Any portal role may read the catalog (signed-in users without a role may not)."""

    message = "You hold no portal role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return can_view_catalog(request.user)


class ApiDocsAccess(TokenHasScope):
    """The OpenAPI schema and the docs page: anyone when `API_DOCS_PUBLIC`, else a signed-in user or a `read` token."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if settings.API_DOCS_PUBLIC:
            return True
        return bool(request.user and request.user.is_authenticated) and super().has_permission(request, view)
