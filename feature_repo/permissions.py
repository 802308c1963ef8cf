"""Only the portal writes the registry: the Feast permissions policy every governed project should carry.

Feast 0.67's servers (the feature server, the registry server, `feast ui`) enforce these when their
feature_store.yaml has an `auth:` section (k8s/base/feature_store.server.yaml: `kubernetes`). Without a
permission, Feast lets every authenticated user create, update and delete anything there, outside review.

- `portal_apply_writes`: every action on every Feast object, for the role the portal applies with
  (`FEAST_APPLY_ROLE`, default `feature-portal-apply`; under Kubernetes auth a role is the name of a Role
  bound to the caller's ServiceAccount, k8s/base/feast-auth.yaml).
- `everyone_describes_and_reads`: describe, online and offline reads for every authenticated identity (the
  `system:authenticated` group Kubernetes gives every valid token; with OIDC, name your IdP's all-users group).

Nobody else may create, update or delete an object, or write to the stores: changes go through a change request.
`manage.py preflight` warns about a registry whose permissions let any other role write (README "Deployment").
A team that pushes to a push source adds its own permission granting `WRITE_ONLINE` on it to its producer's role.
"""

from feast.feast_object import ALL_RESOURCE_TYPES
from feast.permissions.action import ALL_ACTIONS, READ, AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import GroupBasedPolicy, RoleBasedPolicy

PORTAL_APPLY_ROLE = "feature-portal-apply"  # the portal's FEAST_APPLY_ROLE
GOVERNANCE_TAGS = {"managed-by": "feature-portal", "domain": "governance"}

portal_apply_writes = Permission(
    name="portal_apply_writes",
    types=ALL_RESOURCE_TYPES,
    actions=ALL_ACTIONS,
    policy=RoleBasedPolicy(roles=[PORTAL_APPLY_ROLE]),
    tags=GOVERNANCE_TAGS,
)

everyone_describes_and_reads = Permission(
    name="everyone_describes_and_reads",
    types=ALL_RESOURCE_TYPES,
    actions=[AuthzedAction.DESCRIBE, *READ],
    policy=GroupBasedPolicy(groups=["system:authenticated"]),
    tags=GOVERNANCE_TAGS,
)
