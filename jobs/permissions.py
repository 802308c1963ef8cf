"""Who may build and read training datasets (pure predicates; catalog.permissions holds the roles).

Dataset metadata (schema, null rates, contract hash, row count) is visible to every portal role. The
rows themselves (the first rows on the page, the downloads) hold feature values: only the dataset's
creator, operators and admins, and members of the team owning the feature service (or, for a feature
list, one of its views) may read them.
"""

from __future__ import annotations

from typing import Any

from catalog.models import CatalogObject
from catalog.permissions import can_view_catalog, has_role_at_least, user_roles


def can_build_training_dataset(user: Any) -> bool:
    """Proposers and above build training datasets (the people who register models)."""
    return has_role_at_least(user, "proposer")


def can_read_training_dataset_rows(user: Any, dataset: Any) -> bool:
    """The creator, operators/admins, or a member of the team owning the service (or a listed view)."""
    if not can_view_catalog(user):
        return False
    if has_role_at_least(user, "operator") or "admin" in user_roles(user):
        return True
    if dataset.created_by_id is not None and dataset.created_by_id == user.pk:
        return True
    if dataset.feature_service:
        owners = CatalogObject.objects.filter(
            project__name=dataset.project, kind=CatalogObject.Kind.FEATURE_SERVICE, name=dataset.feature_service
        )
    else:
        views = {str(ref).split(":", 1)[0] for ref in dataset.features}
        owners = CatalogObject.objects.filter(
            project__name=dataset.project, kind=CatalogObject.Kind.FEATURE_VIEW, name__in=views
        )
    team_ids = [t for t in owners.values_list("team_id", flat=True) if t is not None]
    return bool(team_ids) and user.teams.filter(pk__in=team_ids).exists()
