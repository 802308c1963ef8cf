"""Who a registry's Feast permissions let do what: its permission objects as plain data, per project.

Feast's servers enforce them when configured with `auth:` (feature_repo/permissions.py has the portal's
policy); `manage.py preflight` reads them to warn about a registry that lets anyone but the portal write.
Only the projects and permissions are read (two small tables of a SQL registry), never the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.exceptions import RegistryCorrupt
from catalog.feast_gateway.base import RepoRef, feast_api, registry_location
from catalog.feast_gateway.registry import registry_file_bytes, sql_engine, sql_registry_error

# Feast's AuthzedAction names that change the registry (as opposed to describe, read and write data).
REGISTRY_WRITE_ACTIONS = frozenset({"CREATE", "UPDATE", "DELETE"})


@dataclass(frozen=True)
class PermissionInfo:
    """One Feast permission: which actions it grants, to whom, on what."""

    project: str
    name: str
    actions: tuple[str, ...]  # AuthzedAction names: CREATE, DESCRIBE, UPDATE, DELETE, READ_ONLINE, ...
    types: tuple[str, ...]  # resource types (FEATURE_VIEW, ...); Feast stores every type when none was named
    policy: str  # role_based, group_based, namespace_based, combined_group_namespace; "" grants everyone
    principals: tuple[str, ...]  # the roles, groups or namespaces (namespace: prefixed in a combined policy)
    name_patterns: tuple[str, ...]
    required_tags: tuple[tuple[str, str], ...]

    @property
    def registry_writes(self) -> tuple[str, ...]:
        """The actions it grants that create, update or delete registry objects."""
        return tuple(a for a in self.actions if a in REGISTRY_WRITE_ACTIONS)


def _permission_info(proto: Any, project: str) -> PermissionInfo:
    spec = proto.spec
    spec_type = type(spec)
    kind = spec.policy.WhichOneof("policy_type") or ""
    principals: list[str] = []
    if kind:
        policy = getattr(spec.policy, kind)
        principals += list(getattr(policy, "roles", []))
        principals += list(getattr(policy, "groups", []))
        principals += [
            f"namespace:{n}" if kind == "combined_group_namespace_policy" else n
            for n in getattr(policy, "namespaces", [])
        ]
    return PermissionInfo(
        project=project,
        name=spec.name,
        actions=tuple(spec_type.AuthzedAction.Name(a) for a in spec.actions),
        types=tuple(spec_type.Type.Name(t) for t in spec.types),
        policy=kind.removesuffix("_policy"),
        principals=tuple(principals),
        name_patterns=tuple(spec.name_patterns),
        required_tags=tuple(sorted(spec.required_tags.items())),
    )


def registry_permissions(repo: RepoRef) -> dict[str, list[PermissionInfo]]:
    """Every project of the repo's registry with its permissions (an empty list: none). A registry nothing was
    applied to yet holds no project: {}."""
    from feast.protos.feast.core.Permission_pb2 import Permission

    location = registry_location(repo)
    projects: dict[str, list[PermissionInfo]] = {}
    if location.kind == "sql":
        from sqlalchemy import inspect, text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with sql_engine(location.path).connect() as conn:
                present = set(inspect(conn).get_table_names())
                if "projects" not in present:
                    return {}
                for (name,) in conn.execute(text("SELECT project_id FROM projects ORDER BY project_id")):
                    projects[str(name)] = []
                rows = []
                if "permissions" in present:
                    query = "SELECT project_id, permission_proto FROM permissions ORDER BY project_id, permission_name"
                    rows = [(str(r[0]), bytes(r[1])) for r in conn.execute(text(query))]
        except SQLAlchemyError as exc:
            raise sql_registry_error(location, exc) from exc
        for project, blob in rows:
            proto = Permission()
            try:
                proto.ParseFromString(blob)
            except feast_api().DecodeError as exc:
                raise RegistryCorrupt(f"a permission of project {project!r} in {location.display}: {exc}") from exc
            projects.setdefault(project, []).append(_permission_info(proto, project))
        return projects
    if "://" not in location.path and not Path(location.path).exists():
        return {}
    registry = feast_api().Registry()
    try:
        registry.ParseFromString(registry_file_bytes(location, repo))
    except feast_api().DecodeError as exc:
        raise RegistryCorrupt(f"Feast registry file {location.display} does not decode: {exc}") from exc
    for project in registry.projects:
        projects[project.spec.name] = []
    for container in (registry.entities, registry.feature_views, registry.feature_services):
        for obj in container:  # registries written before Feast kept a projects list
            projects.setdefault(obj.spec.project, [])
    for proto in registry.permissions:
        project = proto.spec.project
        projects.setdefault(project, []).append(_permission_info(proto, project))
    return projects
