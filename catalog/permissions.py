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
