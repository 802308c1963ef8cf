"""History: versions per object, diffs between any two, and the catalog as of a past date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from catalog import feast_gateway, selectors
from catalog.models import CatalogObject, ObjectVersion
from tests.catalog.test_sync import _edit, obj, sync_one
from tests.conftest import run_feast

pytestmark = pytest.mark.django_db


def test_history_diff_and_catalog_as_of(editable_demo_repo: feast_gateway.RepoRef, viewer: Any) -> None:
    sync_one()
    ObjectVersion.objects.update(recorded_at=timezone.now() - timedelta(days=3))  # the baseline, three days ago
    features = editable_demo_repo.path / "features.py"
    original = features.read_text()
    _edit(features, "ttl=timedelta(days=45)", "ttl=timedelta(days=30)")
    start = original.index("attrition_model_v2 = FeatureService(")
    features.write_text(features.read_text()[: features.read_text().index("attrition_model_v2 = FeatureService(")])
    assert start > 0
    run_feast(editable_demo_repo, "apply")
    sync_one()

    dept = obj("employee_attrition", "feature_view", "department_features")
    history = list(selectors.object_history(user=viewer, obj=dept).values_list("version", "change"))
    assert history == [(2, "changed"), (1, "added")]
    assert selectors.version_diff(user=viewer, obj=dept, from_version=1, to_version=2) == [
        {"path": "ttl", "change": "changed", "before": "3888000s", "after": "2592000s"}
    ]
    with pytest.raises(ObjectVersion.DoesNotExist):
        selectors.version_diff(user=viewer, obj=dept, from_version=1, to_version=9)

    two_days_ago = timezone.now() - timedelta(days=2)
    then = {o.name: o.as_of_version for o in selectors.catalog_as_of(user=viewer, when=two_days_ago)}
    now = {o.name: o.as_of_version for o in selectors.catalog_as_of(user=viewer, when=timezone.now())}
    assert "attrition_model_v2" in then and "attrition_model_v2" not in now  # removed since
    assert then["department_features"] == 1 and now["department_features"] == 2
    assert not list(selectors.catalog_as_of(user=viewer, when=timezone.now() - timedelta(days=10)))
    services_then = selectors.catalog_as_of(user=viewer, when=two_days_ago, kind="feature_service")
    assert sorted(o.name for o in services_then) == ["attrition_model_v1", "attrition_model_v2"]


def test_anonymous_users_see_no_history(demo_repo: feast_gateway.RepoRef) -> None:
    from django.contrib.auth.models import AnonymousUser

    sync_one()
    anyone = AnonymousUser()
    assert not selectors.catalog_as_of(user=anyone, when=timezone.now()).exists()
    assert not selectors.object_history(user=anyone, obj=CatalogObject.objects.first()).exists()
