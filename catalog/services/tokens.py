"""API tokens: create (the raw token is returned once), revoke."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.models import ApiToken
from catalog.permissions import can_manage_tokens, has_role
from catalog.services.audit import audit_record

MAX_EXPIRY_DAYS = 366
TOKEN_PREFIX = "fpt"


def token_hash(raw: str) -> str:
    """SHA-256 of the whole token (tokens carry 192 random bits, so a fast hash is enough)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def token_split(raw: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed `fpt_<prefix>_<secret>` token, else None."""
    head, sep, rest = raw.partition("_")
    prefix, sep2, secret = rest.partition("_")
    if head != TOKEN_PREFIX or not sep or not sep2 or not prefix or not secret:
        return None
    return prefix, secret


def _may_manage(actor: Any, user: Any) -> bool:
    return can_manage_tokens(actor) and (actor.pk == user.pk or has_role(actor, "admin"))


@transaction.atomic
def api_token_create(
    *,
    actor: Any,
    user: Any,
    name: str,
    scopes: list[str],
    expires_in_days: int | None = None,
    parent: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """A new token for `user` (by the user or an admin): (the row, the raw token to show once).

    Made with a token (`parent`, over the API), it is never wider than that token: a subset of its scopes,
    and an expiry no later than its own. Revoking the parent revokes it. Only the prefix and the SHA-256 of
    the token are stored.
    """
    if not _may_manage(actor, user) or not user.is_active:
        raise NotPermitted("You may only create tokens for yourself.")
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name or len(name) > 100:
        errors["name"] = ["Give the token a name of 1 to 100 characters."]
    valid = set(ApiToken.Scope.values)
    wanted = list(dict.fromkeys(scopes))
    if not wanted or any(s not in valid for s in wanted):
        errors["scopes"] = [f"Choose one or more of {', '.join(ApiToken.Scope.values)}."]
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        errors["expires_in_days"] = [f"Between 1 and {MAX_EXPIRY_DAYS} days (or none: no expiry)."]
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    if parent is not None:
        if not set(wanted) <= set(parent.scopes):
            raise NotPermitted("A token may only create tokens with a subset of its own scopes.")
        if parent.expires_at is not None and (expires_at is None or expires_at > parent.expires_at):
            days = max(0, (parent.expires_at - timezone.now()).days)
            limit = f"This token expires {parent.expires_at:%Y-%m-%d %H:%M} UTC: a token it creates must expire by then"
            errors["expires_in_days"] = [f"{limit} (expires_in_days at most {days})."]
    if errors:
        raise InvalidInput("Invalid token request.", details=errors)
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    token = ApiToken(
        user=user,
        name=name,
        prefix=prefix,
        key_hash=token_hash(raw),
        scopes=[s for s in ApiToken.Scope.values if s in wanted],
        expires_at=expires_at,
        parent=parent,
    )
    token.full_clean()
    token.save()
    audit_record(
        actor=actor,
        action="api_token.created",
        obj=token,
        object_repr=f"{user.get_username()}: {token}",
        after={
            "user": user.get_username(),
            "name": name,
            "scopes": token.scopes,
            "expires_at": _iso(token),
            "created_with_token": parent.prefix if parent is not None else None,
        },
    )
    return token, raw


def _iso(token: ApiToken) -> str | None:
    return token.expires_at.isoformat() if token.expires_at else None


@transaction.atomic
def api_token_revoke(*, actor: Any, token: ApiToken) -> ApiToken:
    """Revoke a token (its user or an admin), and every token made with it, at any depth; twice is a no-op."""
    if not _may_manage(actor, token.user):
        raise NotPermitted("You may only revoke your own tokens.")
    if not ApiToken.objects.filter(pk=token.pk).exists():
        raise ObjectNotFound("No such token.")
    now = timezone.now()
    family, frontier = [token.pk], [token.pk]
    while frontier:
        frontier = list(ApiToken.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        family += [pk for pk in frontier if pk not in family]
    for revoked in ApiToken.objects.filter(pk__in=family, revoked_at__isnull=True).select_related("user"):
        if ApiToken.objects.filter(pk=revoked.pk, revoked_at__isnull=True).update(revoked_at=now, updated_at=now):
            audit_record(
                actor=actor,
                action="api_token.revoked",
                obj=revoked,
                object_repr=f"{revoked.user.get_username()}: {revoked}",
                after={"with": token.prefix} if revoked.pk != token.pk else None,
            )
    token.refresh_from_db()
    return token
