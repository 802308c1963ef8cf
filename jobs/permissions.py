"""Who may build and read training datasets (pure predicates; catalog.permissions holds the roles).

Dataset metadata (schema, null rates, contract hash, row count) is visible to every portal role. The
rows themselves (the first rows on the page, the downloads) hold feature values: they follow the one
feature-value rule of catalog.permissions.
"""

from __future__ import annotations

from typing import Any

from catalog.permissions import can_see_feature_values, has_role
from catalog.selectors import feature_value_team_ids


def can_build_training_dataset(user: Any) -> bool:
    """Proposers and above build training datasets (the people who register models)."""
    return has_role(user, "proposer")


def can_read_training_dataset_rows(user: Any, dataset: Any) -> bool:
    """The feature-value rule (catalog.permissions) for a dataset: its creator, operators and admins, and members
    of a team owning its feature service, the service's views, or its listed views."""
    teams = feature_value_team_ids(
        project=dataset.project,
        service=dataset.feature_service or None,
        views=() if dataset.feature_service else {str(ref).split(":", 1)[0] for ref in dataset.features},
    )
    return can_see_feature_values(user, team_ids=teams, asked_by_id=dataset.created_by_id)
