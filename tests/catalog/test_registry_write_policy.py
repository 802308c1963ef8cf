"""Only the portal writes the registry: the demo repo's Feast permissions policy (feature_repo/permissions.py),
enforced by Feast's own code, shown in the catalog, and `manage.py preflight` warning about registries without it.

The temporary repos are applied with the real `feast` CLI (file registries, as `feast init` makes them).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject
from catalog.services.sync import registry_sync
from portal.preflight import registry_write_warnings
from tests import environment as env
from tests.conftest import run_feast
from tests.test_foundation import run_manage

PROJECT = "employee_attrition"
APPLY_ROLE = "feature-portal-apply"
POLICY = {"everyone_describes_and_reads", "portal_apply_writes"}

FEATURE_STORE_YAML = """project: preflight_check
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""
DEFINITIONS = """from feast import Entity, ValueType

customer = Entity(name="customer_id", join_keys=["customer_id"], value_type=ValueType.INT64)
"""
SCIENTISTS_EDIT_VIEWS = """from feast import FeatureView
from feast.permissions.action import AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy

scientists_edit_views = Permission(
    name="scientists_edit_views",
    types=[FeatureView],
    actions=[AuthzedAction.DESCRIBE, AuthzedAction.UPDATE],
    policy=RoleBasedPolicy(roles=["data-scientists", "feature-portal-apply"]),
)
"""


def test_the_demo_registry_holds_the_policy_and_the_catalog_shows_it(
    demo_repo: feast_gateway.RepoRef, db: None, client: Client, viewer: Any, proposer: Any
) -> None:
    permissions = {p.name: p for p in feast_gateway.registry_permissions(demo_repo)[PROJECT]}
    assert set(permissions) == POLICY
    writes = permissions["portal_apply_writes"]
    assert (writes.policy, writes.principals) == ("role_based", (APPLY_ROLE,))
    assert {"CREATE", "UPDATE", "DELETE"} <= set(writes.actions) and writes.name_patterns == ()
    reads = permissions["everyone_describes_and_reads"]
    assert (reads.policy, reads.principals) == ("group_based", ("system:authenticated",))
    assert set(reads.actions) == {"DESCRIBE", "READ_ONLINE", "READ_OFFLINE"} and reads.registry_writes == ()
    assert len(reads.types) == len(writes.types) >= 12  # every Feast object type

    (run,) = registry_sync(trigger="test")
    assert run.status == "succeeded", run.error
    shown = CatalogObject.objects.filter(project__name=PROJECT, kind="permission")
    assert set(shown.values_list("name", flat=True)) == POLICY
    client.force_login(viewer)
    page = client.get(shown.get(name="portal_apply_writes").get_absolute_url()).content.decode()
    assert "role_based" in page and APPLY_ROLE in page and "DELETE" in page
    assert [o["name"] for o in client.get("/api/v1/permissions/").json()["results"]] == sorted(POLICY)
    assert registry_write_warnings() == []  # the demo as shipped passes preflight
    client.force_login(proposer)  # shown, not governed: no "Propose a change" on a permission's page
    assert 'id="propose"' not in client.get(shown.get(name="portal_apply_writes").get_absolute_url()).content.decode()
    view = CatalogObject.objects.get(project__name=PROJECT, kind="feature_view", name="employee_features")
    assert 'id="propose"' in client.get(view.get_absolute_url()).content.decode()


def test_feasts_own_enforcement_lets_only_the_apply_role_write(demo_repo: feast_gateway.RepoRef) -> None:
    from feast.errors import FeastPermissionError
    from feast.permissions.action import AuthzedAction
    from feast.permissions.enforcer import enforce_policy
    from feast.permissions.user import User

    store = feast_gateway.feature_store(demo_repo)
    permissions = store.list_permissions()
    resources = [
        *store.list_entities(),
        *store.list_data_sources(),
        *store.list_feature_views(),
        *store.list_on_demand_feature_views(),
        *store.list_feature_services(),
        *permissions,
    ]
    assert len(resources) > 10
    portal = User("mlops:feature-portal", roles=[APPLY_ROLE], groups=["system:authenticated"])
    model = User("team-people:churn-model", roles=["churn-model"], groups=["system:authenticated"])
    writes = [AuthzedAction.CREATE, AuthzedAction.UPDATE, AuthzedAction.DELETE]
    reads = [AuthzedAction.DESCRIBE, AuthzedAction.READ_ONLINE, AuthzedAction.READ_OFFLINE]
    assert enforce_policy(permissions, portal, resources, writes) == resources
    assert enforce_policy(permissions, model, resources, reads) == resources
    for resource in resources:
        for action in [*writes, AuthzedAction.WRITE_ONLINE]:
            with pytest.raises(FeastPermissionError):
                enforce_policy(permissions, model, [resource], [action])
    stranger = User("someone", roles=[], groups=[])  # no Kubernetes identity: not even a describe
    with pytest.raises(FeastPermissionError):
        enforce_policy(permissions, stranger, resources[:1], [AuthzedAction.DESCRIBE])


def _applied_repo(path: Path, *extra: tuple[str, str]) -> feast_gateway.RepoRef:
    path.mkdir()
    (path / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (path / "definitions.py").write_text(DEFINITIONS)
    for name, text in extra:
        (path / name).write_text(text)
    repo = feast_gateway.repo_ref(path)
    run_feast(repo, "apply")
    return repo


def _preflight_warnings(repo: feast_gateway.RepoRef) -> list[str]:
    """`manage.py preflight` run as an operator would, governing `repo` (the portal's own databases as usual)."""
    healthy = {"DATABASE_URL": f"{env.PG}/postgres", "FEAST_REGISTRY_URL": f"{env.PG}/postgres"}
    result = run_manage("preflight", overrides={**healthy, "FEAST_REPO_PATH": str(repo.path)})
    assert result.returncode == 0 and "configuration ok" in result.stdout, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith(("warning: Feast", "warning: cannot check"))]


@pytest.mark.django_db
def test_preflight_warns_about_a_registry_without_permissions_and_is_quiet_with_the_policy(
    tmp_path: Path, settings: Any
) -> None:
    bare = _applied_repo(tmp_path / "bare")
    assert feast_gateway.registry_permissions(bare) == {"preflight_check": []}
    (warning,) = _preflight_warnings(bare)
    assert warning.startswith("warning: Feast project 'preflight_check'") and "has no permissions" in warning
    assert "feature-portal-apply" in warning

    policy = ("permissions.py", (env.DEMO_REPO / "permissions.py").read_text())
    governed = _applied_repo(tmp_path / "governed", policy)
    assert _preflight_warnings(governed) == []

    # A role other than the apply role may update views: named; so is a renamed apply role.
    loose = _applied_repo(tmp_path / "loose", policy, ("scientists.py", SCIENTISTS_EDIT_VIEWS))
    settings.FEAST_REPO_PATHS = [loose.path]
    (warning,) = registry_write_warnings()
    assert warning.startswith("Feast permission 'scientists_edit_views' of project 'preflight_check'")
    assert "lets role based data-scientists update objects" in warning
    settings.FEAST_APPLY_ROLE = "portal-ci"
    assert sorted(w.split("'")[1] for w in registry_write_warnings()) == [
        "portal_apply_writes",
        "scientists_edit_views",
    ]


@pytest.mark.django_db
def test_preflight_checks_every_governed_registry_and_says_when_one_cannot_be_read(
    tmp_path: Path, settings: Any
) -> None:
    policy = ("permissions.py", (env.DEMO_REPO / "permissions.py").read_text())
    governed = _applied_repo(tmp_path / "governed", policy)
    broken = tmp_path / "broken"
    shutil.copytree(governed.path, broken)
    (broken / "data" / "registry.db").write_bytes(b"\x00not a registry")
    never_applied = tmp_path / "never_applied"
    never_applied.mkdir()
    (never_applied / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    settings.FEAST_REPO_PATHS = [governed.path, broken, never_applied]
    warnings = registry_write_warnings()
    assert len(warnings) == 1 and "cannot check who may write the Feast registry" in warnings[0], warnings
    assert str(broken / "data" / "registry.db") in warnings[0]
