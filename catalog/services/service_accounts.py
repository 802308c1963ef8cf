"""Service accounts: users for machines (CI), holding ordinary API tokens.

A service account is a user in the `service-account` group with one portal role (viewer, proposer or
operator) and, optionally, owner teams; it has no password, so it never signs in and acts only through its
tokens. Only admins create, re-key and deactivate them (the API, or `manage.py service_account` with shell
access to the deployment). Its tokens are `ApiToken`s like anyone's (catalog.services.tokens: hashed,
scoped, expiring, revocable), never with the `approve` scope: a machine never reviews a change. Everything
it does is attributed to it in the audit log, like any user's actions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from catalog.exceptions import DuplicateObject, InvalidInput, NotPermitted
from catalog.models import ApiToken, Team
from catalog.permissions import SERVICE_ACCOUNT_GROUP, has_role, is_service_account
from catalog.services.audit import audit_record
from catalog.services.tokens import api_token_create, api_token_revoke

ROLES = ("viewer", "proposer", "operator")
SCOPES = (ApiToken.Scope.READ, ApiToken.Scope.PROPOSE, ApiToken.Scope.OPERATE)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _require_admin(actor: Any) -> None:
    """`actor` None is `manage.py` (shell access to the deployment); anyone else must be an admin."""
    if actor is not None and not has_role(actor, "admin"):
        raise NotPermitted("Managing service accounts needs the admin role.")


def _check_scopes(scopes: Sequence[str]) -> None:
    wrong = sorted(set(scopes) - set(SCOPES))
    if wrong:
        raise InvalidInput(
            f"a service account's token takes {', '.join(SCOPES)} (never approve: machines do not review)",
            {"scopes": [f"not allowed: {', '.join(wrong)}"]},
        )


@transaction.atomic
def service_account_create(
    *,
    actor: Any,
    name: str,
    role: str,
    scopes: Sequence[str],
    teams: Sequence[str] = (),
    expires_in_days: int | None = None,
) -> tuple[Any, ApiToken, str]:
    """A new service account with its first token: (the user, the token, the raw token to show once)."""
    _require_admin(actor)
    errors: dict[str, list[str]] = {}
    if not NAME.match(name or ""):
        errors["name"] = ["1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit."]
    if role not in ROLES:
        errors["role"] = [f"One of {', '.join(ROLES)}."]
    known = dict(Team.objects.filter(name__in=list(teams)).values_list("name", "pk"))
    if set(teams) - set(known):
        errors["teams"] = [f"No team {', '.join(sorted(set(teams) - set(known)))}."]
    if errors:
        raise InvalidInput("Invalid service account.", errors)
    _check_scopes(scopes)
    user_model = get_user_model()
    if user_model.objects.filter(username=name).exists():
        raise DuplicateObject(f"a user named {name!r} already exists")
    account = user_model(username=name)
    account.set_unusable_password()  # it never signs in: it acts only through its tokens
    account.save()
    account.groups.add(
        Group.objects.get_or_create(name=SERVICE_ACCOUNT_GROUP)[0], Group.objects.get_or_create(name=role)[0]
    )
    account.teams.add(*known.values())
    audit_record(
        actor=actor,
        action="service_account.created",
        obj=account,
        object_repr=f"service account {name}",
        after={"name": name, "role": role, "teams": sorted(known), "via": "manage.py" if actor is None else "api"},
    )
    token, raw = service_account_token_create(
        actor=actor, account=account, name=f"{name}-ci", scopes=scopes, expires_in_days=expires_in_days
    )
    return account, token, raw


def service_account_token_create(
    *, actor: Any, account: Any, name: str, scopes: Sequence[str], expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Another token for an active service account (rotation: create the new one, then revoke the old)."""
    _require_admin(actor)
    if not is_service_account(account) or not account.is_active:
        raise InvalidInput(f"{account.get_username()!r} is not an active service account")
    _check_scopes(scopes)
    # from manage.py the account makes its own token (as `create_api_token` does); over the API, the admin
    return api_token_create(
        actor=actor or account, user=account, name=name, scopes=list(scopes), expires_in_days=expires_in_days
    )


@transaction.atomic
def service_account_deactivate(*, actor: Any, account: Any) -> Any:
    """Revoke every token of the account and deactivate it (its history and audit trail stay)."""
    _require_admin(actor)
    if not is_service_account(account):
        raise InvalidInput(f"{account.get_username()!r} is not a service account")
    for token in ApiToken.objects.filter(user=account, revoked_at__isnull=True).select_related("user"):
        api_token_revoke(actor=actor or account, token=token)
    if type(account).objects.filter(pk=account.pk, is_active=True).update(is_active=False):
        audit_record(
            actor=actor,
            action="service_account.deactivated",
            obj=account,
            object_repr=f"service account {account.get_username()}",
        )
    account.refresh_from_db()
    return account
