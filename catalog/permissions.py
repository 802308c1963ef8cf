"""Object and role rules as pure predicates, shared by HTML views, the API and services.

Feature values (the one rule): online preview results, skew-check examples, the top values of a
statistics job and training-dataset rows hold real entities' values. They are visible to operators and
admins, to members of a team that owns what they come from (the feature service, or any of its views,
or the listed views), and to the person who asked for them (a preview's starter, a dataset's creator).
Starting a preview needs the proposer role or membership of an owning team (building a dataset needs the
proposer role, jobs.permissions), so a viewer outside the owning teams, or a token of such a viewer,
cannot read values at all. Every page, API
endpoint and job start uses `can_see_feature_values` / `can_ask_for_feature_values`; which teams own a
selection is `catalog.selectors.feature_value_team_ids`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Roles are Django groups; each role includes the ones before it.
ROLES = ("viewer", "proposer", "approver", "operator", "admin")


def user_roles(user: Any) -> set[str]:
    """The roles a user holds (superusers hold all)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if cached:
            cached.add("viewer")
        user._portal_roles = cached
    return set(cached)


def has_role(user: Any, role: str) -> bool:
    """True when the user holds `role` or a role after it in ROLES (admin ⊇ operator ⊇ approver ⊇ proposer ⊇
    viewer): the one role check."""
    roles = user_roles(user)
    return any(r in roles for r in ROLES[ROLES.index(role) :])


def can_view_catalog(user: Any) -> bool:
    """Every role may browse the catalog."""
    return bool(user_roles(user))


def can_operate(user: Any) -> bool:
    """Operators run syncs, materializations and applies."""
    return has_role(user, "operator")


def can_register_model(user: Any) -> bool:
    """Proposers and above register models (consumers) against feature services."""
    return has_role(user, "proposer")


def can_delete_model(user: Any, consumer: Any) -> bool:
    """The model's creator, a member of its team, or an admin may delete a registered model."""
    if not user_roles(user):
        return False
    if has_role(user, "admin") or (consumer.created_by_id is not None and consumer.created_by_id == user.pk):
        return True
    return consumer.team_id is not None and user.teams.filter(pk=consumer.team_id).exists()


# Users for machines (catalog.services.service_accounts): this group plus one role; they never sign in.
SERVICE_ACCOUNT_GROUP = "service-account"


def is_service_account(user: Any) -> bool:
    """True for a service account (a CI's user), whose tokens are managed by admins."""
    return bool(user is not None and user.pk and user.groups.filter(name=SERVICE_ACCOUNT_GROUP).exists())


def can_manage_tokens(user: Any) -> bool:
    """Every active, signed-in user may hold API tokens (a token never exceeds its user's roles)."""
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_see_feature_values(user: Any, *, team_ids: Iterable[int | None], asked_by_id: int | None = None) -> bool:
    """May the user see feature values of a selection owned by `team_ids` (see the module docstring)?"""
    roles = user_roles(user)
    if not roles:
        return False
    if "operator" in roles or "admin" in roles:
        return True
    if asked_by_id is not None and asked_by_id == user.pk:
        return True
    owners = {t for t in team_ids if t is not None}
    return bool(owners) and user.teams.filter(pk__in=owners).exists()


def can_ask_for_feature_values(user: Any, *, team_ids: Iterable[int | None]) -> bool:
    """May the user start a preview or build a dataset of a selection owned by `team_ids`?"""
    return has_role(user, "proposer") or can_see_feature_values(user, team_ids=team_ids)
