"""Optional single sign-on: OpenID Connect through mozilla-django-oidc (off unless OIDC_ENABLED).

The IdP's groups claim (OIDC_GROUPS_CLAIM) maps onto portal roles (OIDC_ROLE_MAP, `idp-group=role`)
and teams (OIDC_TEAM_MAP, `idp-group=team`, plus groups starting with OIDC_TEAM_PREFIX). At every SSO
login the user's roles and team memberships are set to what the IdP says, with an audit event when
they change. Local accounts (the quickstart's demo users) keep signing in with a password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from catalog.models import Team
from catalog.permissions import ROLES
from catalog.services.audit import audit_record


def claim_groups(claims: Mapping[str, Any]) -> list[str]:
    """The groups claim as a list of strings (a single string counts as one group)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM, [])
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def roles_and_teams(groups: list[str]) -> tuple[set[str], set[str]]:
    """The portal roles and team names the IdP groups map onto."""
    roles = {settings.OIDC_ROLE_MAP[g] for g in groups if g in settings.OIDC_ROLE_MAP}
    teams = {settings.OIDC_TEAM_MAP[g] for g in groups if g in settings.OIDC_TEAM_MAP}
    prefix = settings.OIDC_TEAM_PREFIX
    if prefix:
        teams |= {g[len(prefix) :] for g in groups if g.startswith(prefix) and len(g) > len(prefix)}
    return roles, teams


@transaction.atomic
def user_sso_sync(*, user: User, roles: set[str], teams: set[str]) -> bool:
    """Set the user's portal roles and team memberships to what the IdP says; True when they changed."""
    before_roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    before_teams = set(user.teams.values_list("name", flat=True))
    if before_roles == roles and before_teams == teams:
        return False
    user.groups.remove(*user.groups.filter(name__in=set(ROLES) - roles))
    user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in sorted(roles)))
    user.teams.set([Team.objects.get_or_create(name=name)[0] for name in sorted(teams)])
    user.__dict__.pop("_portal_roles", None)
    audit_record(
        actor=None,
        action="user.sso_synced",
        obj=user,
        object_repr=user.get_username(),
        before={"roles": sorted(before_roles), "teams": sorted(before_teams)},
        after={"roles": sorted(roles), "teams": sorted(teams)},
    )
    return True


class PortalOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]  # mozilla-django-oidc is untyped
    """Users are keyed by OIDC_USERNAME_CLAIM (default preferred_username); roles and teams follow the IdP."""

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if not settings.OIDC_ENABLED:
            return None
        user: User | None = super().authenticate(request, **kwargs)
        return user

    def get_username(self, claims: Mapping[str, Any]) -> str:
        return str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or "")[:150]

    def verify_claims(self, claims: Mapping[str, Any]) -> bool:
        return bool(self.get_username(claims))

    def filter_users_by_claims(self, claims: Mapping[str, Any]) -> QuerySet[User]:
        return User.objects.filter(username=self.get_username(claims), is_active=True)

    def create_user(self, claims: Mapping[str, Any]) -> User:
        user = User.objects.create_user(self.get_username(claims), email=str(claims.get("email", "")))
        user.set_unusable_password()
        user.save(update_fields=["password"])
        audit_record(actor=None, action="user.sso_created", obj=user, object_repr=user.get_username())
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: Mapping[str, Any]) -> User:
        email = str(claims.get("email", ""))
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        roles, teams = roles_and_teams(claim_groups(claims))
        user_sso_sync(user=user, roles=roles, teams=teams)
        return user


def _enabled_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not enabled.")
        return view(request, *args, **kwargs)

    return wrapped


# Mounted at /oidc/ (portal/urls.py); 404 unless OIDC_ENABLED. URL names are mozilla-django-oidc's.
urlpatterns: list[URLPattern] = [
    path("authenticate/", _enabled_only(OIDCAuthenticationRequestView.as_view()), name="oidc_authentication_init"),
    path("callback/", _enabled_only(OIDCAuthenticationCallbackView.as_view()), name="oidc_authentication_callback"),
]
