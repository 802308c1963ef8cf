"""Object and role rules as pure predicates, shared by HTML views, the API and services."""

from __future__ import annotations

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
    """True when the user holds `role` (admins hold every role)."""
    roles = user_roles(user)
    return role in roles or "admin" in roles


def can_view_catalog(user: Any) -> bool:
    """Every role may browse the catalog."""
    return bool(user_roles(user))


def can_operate(user: Any) -> bool:
    """Operators run syncs, materializations and applies."""
    return has_role(user, "operator")


def has_role_at_least(user: Any, role: str) -> bool:
    """True when the user holds `role` or a role after it in ROLES (operator ⊇ approver ⊇ proposer ⊇ viewer)."""
    roles = user_roles(user)
    return any(r in roles for r in ROLES[ROLES.index(role) :])


def can_register_model(user: Any) -> bool:
    """Proposers and above register models (consumers) against feature services."""
    return has_role_at_least(user, "proposer")


def can_delete_model(user: Any, consumer: Any) -> bool:
    """The model's creator, a member of its team, or an admin may delete a registered model."""
    if not user_roles(user):
        return False
    if has_role(user, "admin") or (consumer.created_by_id is not None and consumer.created_by_id == user.pk):
        return True
    return consumer.team_id is not None and user.teams.filter(pk=consumer.team_id).exists()


def can_manage_tokens(user: Any) -> bool:
    """Every active, signed-in user may hold API tokens (a token never exceeds its user's roles)."""
    return bool(user is not None and user.is_authenticated and user.is_active)
