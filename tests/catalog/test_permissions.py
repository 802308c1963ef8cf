"""The one role check: each role includes the ones before it (admin ⊇ operator ⊇ approver ⊇ proposer ⊇ viewer)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.permissions import ROLES, has_role


@pytest.mark.django_db
def test_has_role_means_that_role_or_a_higher_one(
    viewer: Any, proposer: Any, approver: Any, operator: Any, admin_user: Any
) -> None:
    users = [viewer, proposer, approver, operator, admin_user]  # in ROLES order
    for held, user in enumerate(users):
        assert [has_role(user, role) for role in ROLES] == [i <= held for i in range(len(ROLES))], user.username
