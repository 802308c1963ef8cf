"""The portal's only door to Feast: the one package that imports `feast`.

It reads registries from a feature_store.yaml alone (no feature definition code is imported),
returns plain dataclasses, and never writes to the portal database.

Design notes (Feast 0.67):
- Registries are read as protos. `registry.proto()` is ~25x faster than `list_feature_views()`.
- The SQL registry is read with plain SELECTs on its tables. Constructing Feast's `SqlRegistry`
  inserts a project-metadata row for the configured project, which later surfaces as a phantom
  project; reading must never create anything.
- `last_updated_timestamp`, `meta` and the copies of data sources embedded in views change on every
  materialization. `content_hash` covers what a user defined (the spec, with embedded source metadata
  cleared), so history and out-of-band detection compare content, not timestamps.

Modules: base (plain data, configuration, Feast's lazy import), protos (protos -> plain data), registry
(reading a registry), online (online reads), materialize (per-view materialization), preview (the online
preview's worker side), quality (skew, statistics), changes (governance: current and proposed protos,
Feast's per-object plan, apply), registry_write (the apply's all-or-nothing registry writes), sandbox with
upload_archive and _parse_worker (parsing uploaded repos in an isolated process), training (training
datasets) and permissions (a registry's Feast permissions, for preflight). Callers import the package, not
its modules: `from catalog import feast_gateway`.
"""

from catalog.feast_gateway.base import (
    DataSourceInfo,
    EntityInfo,
    FeatureInfo,
    FeatureServiceInfo,
    FeatureViewInfo,
    FeatureViewVersionInfo,
    MaterializationInterval,
    ObjectInfo,
    ProjectInfo,
    RegistryLocation,
    RegistryRecordInfo,
    RegistrySnapshot,
    RegistrySource,
    RepoRef,
    Spec,
    UnreadableObject,
    VectorEntry,
    cli_env,
    config_vars,
    feast_api,
    governed_registries,
    governed_repos,
    project_repo,
    project_repos,
    raw_config,
    registry_location,
    repo_ref,
    run_cli,
)
from catalog.feast_gateway.materialize import (
    MATERIALIZE_FILTER_TAG,
    ChunkResult,
    MaterializationTarget,
    MaterializeFilterInvalid,
    OnlineStoreUnavailable,
    convert_rows_for_online_write,
    materialization_targets,
    materialize_filter_columns,
    materialize_view,
    parse_materialize_filter,
)
from catalog.feast_gateway.online import (
    OnlineRead,
    OnlineValue,
    feature_store,
    online_read,
    reset_stores,
)
from catalog.feast_gateway.preview import (
    materialization_recover,
    online_preview,
)
from catalog.feast_gateway.protos import (
    dtype_name,
    dtype_value,
    recanonical_hash,
    udf_messages,
)
from catalog.feast_gateway.quality import (
    FeatureStats,
    SkewFeature,
    SkewReport,
    feature_statistics,
    online_write_rows,
    skew_check,
)
from catalog.feast_gateway.registry import (
    check_registry,
    dispose_engines,
    read_registry,
    registry_dump_json,
    registry_fingerprint,
)

__all__ = [
    "MATERIALIZE_FILTER_TAG",
    "ChunkResult",
    "DataSourceInfo",
    "EntityInfo",
    "FeatureInfo",
    "FeatureServiceInfo",
    "FeatureStats",
    "FeatureViewInfo",
    "FeatureViewVersionInfo",
    "MaterializationInterval",
    "MaterializationTarget",
    "MaterializeFilterInvalid",
    "ObjectInfo",
    "OnlineRead",
    "OnlineStoreUnavailable",
    "OnlineValue",
    "ProjectInfo",
    "RegistryLocation",
    "RegistryRecordInfo",
    "RegistrySnapshot",
    "RegistrySource",
    "RepoRef",
    "SkewFeature",
    "SkewReport",
    "Spec",
    "UnreadableObject",
    "VectorEntry",
    "check_registry",
    "cli_env",
    "config_vars",
    "convert_rows_for_online_write",
    "dispose_engines",
    "dtype_name",
    "dtype_value",
    "feast_api",
    "feature_statistics",
    "feature_store",
    "governed_registries",
    "governed_repos",
    "materialization_recover",
    "materialization_targets",
    "materialize_filter_columns",
    "materialize_view",
    "online_preview",
    "online_read",
    "online_write_rows",
    "parse_materialize_filter",
    "project_repo",
    "project_repos",
    "raw_config",
    "read_registry",
    "registry_dump_json",
    "registry_fingerprint",
    "registry_location",
    "repo_ref",
    "reset_stores",
    "run_cli",
    "skew_check",
]

# --- Governance (change requests) ---
from catalog.feast_gateway.changes import (
    EDIT_OPS,
    ObjectProto,
    apply_edits,
    apply_protos,
    as_feast_stores,
    content_hash,
    feast_plan,
    object_info,
    object_proto,
    own_hash,
    project_protos,
    references,
    scope_fingerprint,
    source_columns,
    spec_json,
    view_field_names,
)

__all__ += [
    "EDIT_OPS",
    "ObjectProto",
    "apply_edits",
    "apply_protos",
    "as_feast_stores",
    "content_hash",
    "feast_plan",
    "object_info",
    "object_proto",
    "own_hash",
    "project_protos",
    "recanonical_hash",
    "references",
    "scope_fingerprint",
    "source_columns",
    "spec_json",
    "udf_messages",
    "view_field_names",
]

# --- Training datasets ---
from catalog.feast_gateway.training import (
    ROW_COLUMN,
    RetrievalGroup,
    entity_keys_at,
    historical_features,
    retrieval_groups,
    saved_dataset_delete,
    saved_dataset_get,
    saved_dataset_register,
    service_vector,
    vector_from_spec,
)

__all__ += [
    "ROW_COLUMN",
    "RetrievalGroup",
    "entity_keys_at",
    "historical_features",
    "retrieval_groups",
    "saved_dataset_delete",
    "saved_dataset_get",
    "saved_dataset_register",
    "service_vector",
    "vector_from_spec",
]

# --- Sandbox (upload parsing) ---
from catalog.feast_gateway.isolation import isolation_check
from catalog.feast_gateway.isolation import warm as warm_upload_sandbox
from catalog.feast_gateway.sandbox import ParsedObject, ParsedRepo, parse_upload
from catalog.feast_gateway.upload_archive import check_archive as check_upload_archive

__all__ += [
    "ParsedObject",
    "ParsedRepo",
    "check_upload_archive",
    "isolation_check",
    "parse_upload",
    "warm_upload_sandbox",
]

# --- Permissions (who may write the registry through Feast's servers) ---
from catalog.feast_gateway.permissions import REGISTRY_WRITE_ACTIONS, PermissionInfo, registry_permissions

__all__ += [
    "REGISTRY_WRITE_ACTIONS",
    "PermissionInfo",
    "registry_permissions",
]
