"""A removed feature's page says it is removed, when and by what, and claims no freshness or position."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import Feature
from tests.catalog.test_sync import _edit, sync_one
from tests.conftest import run_feast

pytestmark = pytest.mark.django_db
DEPT = "/projects/employee_attrition/feature-views/department_features/features/"


def test_a_removed_feature_shows_removed_and_no_freshness_or_position(
    client: Client, editable_demo_repo: feast_gateway.RepoRef, viewer: Any
) -> None:
    sync_one()
    client.force_login(viewer)
    live = client.get(DEPT + "headcount/").content.decode()
    assert "position 0 in department_features" in live and "data-freshness=" in live
    assert 'id="feature-removed"' not in live

    features = editable_demo_repo.path / "features.py"
    _edit(
        features,
        '        Field(name="headcount", dtype=Int64, description="Active employees in the department."),\n',
        "",
    )
    run_feast(editable_demo_repo, "apply")
    sync_one()
    assert Feature.objects.get(view__name="department_features", name="headcount").status == "removed"

    page = client.get(DEPT + "headcount/").content.decode()
    removed = page.split('id="feature-removed"')[1].split("</section>")[0]
    assert "Dropped from department_features on" in removed and "(version 2 of the view)" in removed
    assert "outside the portal (an out-of-band change to the registry)" in removed
    assert "position " not in page.split('id="feature-removed"')[0]
    assert "data-freshness=" not in page and "Freshness" not in page
    # Its sibling is still served: position and freshness as before.
    sibling = client.get(DEPT + "attrition_rate_90d/").content.decode()
    assert "position " in sibling and "data-freshness=" in sibling
