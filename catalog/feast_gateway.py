"""The portal's only door to Feast: the one module that imports `feast`.

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
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import yaml
from django.conf import settings

if TYPE_CHECKING:
    from feast.protos.feast.core.DataSource_pb2 import DataSource as DataSourceProto
    from feast.protos.feast.core.FeatureService_pb2 import FeatureService as FeatureServiceProto
    from feast.protos.feast.core.FeatureViewVersion_pb2 import FeatureViewVersionRecord
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
    from google.protobuf.message import Message

from catalog.exceptions import (
    FeastConfigInvalid,
    InvalidInput,
    ObjectNotFound,
    PortalError,
    RegistryCorrupt,
    RegistryUnavailable,
)

logger = logging.getLogger(__name__)


@cache
def _feast() -> SimpleNamespace:
    """Feast's modules, imported on first use: `import feast` costs ~5 s (it loads every backend),
    which commands that never read a registry (migrate, check) should not pay."""
    from feast.protos.feast.core.DataSource_pb2 import DataSource
    from feast.protos.feast.core.Entity_pb2 import Entity
    from feast.protos.feast.core.FeatureService_pb2 import FeatureService
    from feast.protos.feast.core.FeatureView_pb2 import FeatureView
    from feast.protos.feast.core.OnDemandFeatureView_pb2 import OnDemandFeatureView
    from feast.protos.feast.core.Project_pb2 import Project
    from feast.protos.feast.core.Registry_pb2 import Registry
    from feast.protos.feast.core.StreamFeatureView_pb2 import StreamFeatureView
    from feast.protos.feast.types.Value_pb2 import ValueType
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    return SimpleNamespace(
        DataSource=DataSource,
        Entity=Entity,
        FeatureService=FeatureService,
        FeatureView=FeatureView,
        OnDemandFeatureView=OnDemandFeatureView,
        Project=Project,
        Registry=Registry,
        StreamFeatureView=StreamFeatureView,
        ValueType=ValueType,
        json_format=json_format,
        DecodeError=DecodeError,
    )


# --- Plain data returned to the rest of the portal ----------------------------------------------


@dataclass(frozen=True)
class RepoRef:
    """A governed Feast repo: a directory and the feature_store YAML the portal uses for it."""

    path: Path
    yaml_path: Path

    @property
    def key(self) -> str:
        """A stable identifier for this repo (its resolved YAML path)."""
        return str(self.yaml_path)


@dataclass(frozen=True)
class RegistryLocation:
    """Where a repo's registry lives, parsed from its YAML."""

    kind: str  # "file" or "sql" (other Feast registry stores are read through Feast's RegistryStore)
    path: str  # file path or SQLAlchemy URL
    project: str  # the project named in feature_store.yaml

    @property
    def display(self) -> str:
        """The location with any password masked."""
        return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", self.path)


@dataclass(frozen=True)
class RegistrySource:
    """One registry and the governed repos that point at it (a SQL registry can hold many projects)."""

    location: RegistryLocation
    repos: tuple[RepoRef, ...]

    @property
    def key(self) -> str:
        """A stable identifier for the registry (password masked)."""
        return f"{self.location.kind}:{self.location.display}"

    @property
    def repo(self) -> RepoRef:
        """The repo whose configuration is used to read the registry."""
        return self.repos[0]

    def repo_for(self, project: str) -> RepoRef | None:
        """The governed repo whose feature_store YAML names `project` (None: read-only project)."""
        for repo in self.repos:
            if registry_location(repo).project == project:
                return repo
        return None


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    dtype: str
    description: str
    tags: dict[str, str]
    position: int


class Spec:
    """An object's user-defined content: hashed eagerly, turned into JSON only when asked.

    Converting a proto to JSON costs ~10x more than hashing it; a sync needs JSON only for the few
    objects that changed.
    """

    __slots__ = ("_json", "_message")

    def __init__(self, message: Message | None = None, json: dict[str, Any] | None = None) -> None:
        self._message = message
        self._json = json

    def json(self) -> dict[str, Any]:
        if self._json is None:
            self._json = _to_dict(self._message) if self._message is not None else {}
        return self._json


@dataclass(frozen=True)
class ObjectInfo:
    """Fields every registry object has. `spec` is the user-defined content (JSON on demand)."""

    project: str
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    created_at: datetime | None
    updated_at: datetime | None
    content: Spec
    content_hash: str

    @property
    def spec(self) -> dict[str, Any]:
        """The user-defined content as registry JSON (snake_case keys)."""
        return self.content.json()


@dataclass(frozen=True)
class ProjectInfo(ObjectInfo):
    pass


@dataclass(frozen=True)
class EntityInfo(ObjectInfo):
    join_keys: list[str]
    value_type: str


@dataclass(frozen=True)
class DataSourceInfo(ObjectInfo):
    kind: str  # file, push, request, kafka, kinesis, bigquery, ...
    location: str  # path, table, query or topic
    timestamp_field: str
    created_timestamp_column: str
    batch_source: str  # for push/stream sources: the name of their batch source
    request_schema: list[FeatureInfo]


@dataclass(frozen=True)
class MaterializationInterval:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class FeatureViewInfo(ObjectInfo):
    kind: str  # batch, stream, on_demand
    features: list[FeatureInfo]
    entities: list[str]
    entity_columns: list[FeatureInfo]
    ttl_seconds: int | None
    batch_source: str
    stream_source: str
    source_views: list[str]  # on-demand views: the feature views they read
    request_sources: list[str]  # on-demand views: the request sources they read
    online: bool
    offline: bool
    enabled: bool
    state: str
    version: str
    current_version_number: int | None
    materialization_intervals: list[MaterializationInterval]
    mode: str
    udf_source: str


@dataclass(frozen=True)
class VectorEntry:
    """One position of a feature service's vector: what the model sees at `index`."""

    index: int
    feature_view: str  # the view's real name
    view_alias: str  # the alias of the projection, "" when none
    feature: str
    dtype: str

    @property
    def reference(self) -> str:
        """The reference Feast uses online, `<alias or view>:<feature>`."""
        return f"{self.view_alias or self.feature_view}:{self.feature}"


@dataclass(frozen=True)
class FeatureServiceInfo(ObjectInfo):
    vector: list[VectorEntry]
    views: list[str]


@dataclass(frozen=True)
class FeatureViewVersionInfo:
    project: str
    feature_view: str
    version_number: int
    view_type: str
    created_at: datetime | None
    description: str
    version_id: str


@dataclass
class RegistrySnapshot:
    """Everything a registry holds, as plain data. Lists keep registry order."""

    location: RegistryLocation
    fingerprint: str
    projects: list[ProjectInfo] = field(default_factory=list)
    entities: list[EntityInfo] = field(default_factory=list)
    data_sources: list[DataSourceInfo] = field(default_factory=list)
    feature_views: list[FeatureViewInfo] = field(default_factory=list)
    feature_services: list[FeatureServiceInfo] = field(default_factory=list)
    feature_view_versions: list[FeatureViewVersionInfo] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # objects the portal could not read, with why


# --- Repos and their configuration --------------------------------------------------------------


def governed_repos() -> list[RepoRef]:
    """The repos named by FEAST_REPO_PATH, each with the YAML this profile uses."""
    return [repo_ref(path) for path in settings.FEAST_REPO_PATHS]


def repo_ref(path: Path, yaml_name: str | None = None) -> RepoRef:
    """The RepoRef for a repo directory (FEAST_FS_YAML, else the profile's preferred YAML)."""
    path = Path(path).resolve()
    if yaml_name is None:
        yaml_name = settings.FEAST_FS_YAML or ""
    if not yaml_name:
        candidates = ["feature_store.yaml"]
        if settings.FEAST_USE_SERVICES_YAML:
            candidates.insert(0, "feature_store.services.yaml")
        yaml_name = next((c for c in candidates if (path / c).is_file()), "feature_store.yaml")
    return RepoRef(path=path, yaml_path=path / yaml_name)


def governed_registries() -> list[RegistrySource]:
    """The distinct registries behind the governed repos, each with the repos that use it."""
    grouped: dict[tuple[str, str], list[RepoRef]] = {}
    locations: dict[tuple[str, str], RegistryLocation] = {}
    for repo in governed_repos():
        location = registry_location(repo)
        key = (location.kind, location.path)
        grouped.setdefault(key, []).append(repo)
        locations.setdefault(key, location)
    return [RegistrySource(location=locations[k], repos=tuple(v)) for k, v in grouped.items()]


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def config_vars() -> dict[str, str]:
    """Values for ${...} placeholders in feature_store YAML: the portal's derived ones, then the env."""
    values = dict(os.environ)
    values.update({k: v for k, v in settings.FEAST_CONFIG_VARS.items() if v})
    return values


def _raw_config(repo: RepoRef) -> dict[str, Any]:
    try:
        text = repo.yaml_path.read_text()
    except FileNotFoundError:
        raise FeastConfigInvalid(f"FEAST_REPO_PATH: {repo.yaml_path} does not exist") from None
    except OSError as exc:
        raise FeastConfigInvalid(f"FEAST_REPO_PATH: cannot read {repo.yaml_path}: {exc.strerror}") from None
    values = config_vars()
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if not values.get(m)})
    if missing:
        raise FeastConfigInvalid(f"{repo.yaml_path.name} needs {', '.join(missing)}, which is not set")
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FeastConfigInvalid(f"{repo.yaml_path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not raw.get("project"):
        raise FeastConfigInvalid(f"{repo.yaml_path} has no 'project'")
    return raw


def registry_location(repo: RepoRef) -> RegistryLocation:
    """Where the repo's registry lives (file path or SQL URL), without touching it."""
    raw = _raw_config(repo)
    registry = raw.get("registry", "data/registry.db")
    if isinstance(registry, str):
        registry = {"path": registry}
    if not isinstance(registry, dict) or not registry.get("path"):
        raise FeastConfigInvalid(f"{repo.yaml_path}: registry has no path")
    kind = str(registry.get("registry_type", "file"))
    path = str(registry["path"])
    if kind == "file" and "://" not in path and not Path(path).is_absolute():
        path = str(repo.path / path)
    return RegistryLocation(kind=kind, path=path, project=str(raw["project"]))


def cli_env(repo: RepoRef) -> dict[str, str]:
    """Environment for running the `feast` CLI on a repo: placeholders resolved, no portal secrets."""
    env = {k: v for k, v in config_vars().items() if not k.startswith(("DJANGO_", "PORTAL_API"))}
    env["FEAST_NO_PROGRESS"] = "1"
    return env


def run_cli(repo: RepoRef, args: Sequence[str], *, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run the real `feast` CLI against a repo (apply, materialize-incremental, registry-dump, ...)."""
    feast_bin = Path(sys.executable).with_name("feast")
    command = [str(feast_bin), "-c", str(repo.path), "-f", str(repo.yaml_path), *args]
    return subprocess.run(command, env=cli_env(repo), capture_output=True, text=True, timeout=timeout, check=False)


# --- Reading a registry -------------------------------------------------------------------------

_SQL_TABLES: list[tuple[str, str, str]] = [
    # (table, name column, proto column)
    ("projects", "project_name", "project_proto"),
    ("entities", "entity_name", "entity_proto"),
    ("data_sources", "data_source_name", "data_source_proto"),
    ("feature_views", "feature_view_name", "feature_view_proto"),
    ("stream_feature_views", "feature_view_name", "feature_view_proto"),
    ("on_demand_feature_views", "feature_view_name", "feature_view_proto"),
    ("feature_services", "feature_service_name", "feature_service_proto"),
]

_engines: dict[str, Any] = {}
_engines_lock = threading.Lock()


def _engine(url: str) -> Any:
    from sqlalchemy import create_engine

    with _engines_lock:
        if url not in _engines:
            connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
            _engines[url] = create_engine(url, pool_pre_ping=True, pool_size=2, connect_args=connect_args)
        return _engines[url]


def dispose_engines() -> None:
    """Close pooled registry connections (tests, and before forking workers)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _sql_error(location: RegistryLocation, exc: Exception) -> RegistryUnavailable:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RegistryUnavailable(f"Feast SQL registry at {location.display} is unreachable: {first_line}")


def _read_sql_rows(location: RegistryLocation) -> dict[str, list[tuple[Any, ...]]]:
    """All proto rows, per table, as (project, name, proto bytes); read-only."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = _engine(location.path)
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            if "projects" not in present:
                raise RegistryUnavailable(
                    f"Feast SQL registry at {location.display} has no tables yet: run `feast apply` first"
                )
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for table, name_col, proto_col in _SQL_TABLES:
                if table not in present:
                    rows[table] = []
                    continue
                project_col = "project_id"
                result = conn.execute(
                    text(
                        f"SELECT {project_col}, {name_col}, {proto_col} FROM {table} ORDER BY {project_col}, {name_col}"
                    )
                )
                rows[table] = [(r[0], r[1], bytes(r[2])) for r in result]
            if "feature_view_version_history" in present:
                result = conn.execute(
                    text(
                        "SELECT project_id, feature_view_name, version_number, feature_view_type, created_timestamp,"
                        " description, version_id FROM feature_view_version_history"
                        " ORDER BY project_id, feature_view_name, version_number"
                    )
                )
                rows["feature_view_version_history"] = [tuple(r) for r in result]
            return rows
    except SQLAlchemyError as exc:
        raise _sql_error(location, exc) from exc


def _sql_fingerprint(location: RegistryLocation) -> str:
    """A digest that changes whenever any registry row changes. On PostgreSQL only md5s cross the wire."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    if not location.path.startswith("postgresql"):
        return _digest_rows(_read_sql_rows(location))
    digest = hashlib.sha256()
    try:
        with _engine(location.path).connect() as conn:
            present = set(inspect(conn).get_table_names())
            if "projects" not in present:
                raise RegistryUnavailable(
                    f"Feast SQL registry at {location.display} has no tables yet: run `feast apply` first"
                )
            parts = [
                f"SELECT '{table}', project_id, {name_col}, md5({proto_col}) FROM {table}"
                for table, name_col, proto_col in _SQL_TABLES
                if table in present
            ]
            query = " UNION ALL ".join(parts) + " ORDER BY 1, 2, 3"
            for row in conn.execute(text(query)):
                digest.update("\x1f".join(str(v) for v in row).encode())
                digest.update(b"\x1e")
    except SQLAlchemyError as exc:
        raise _sql_error(location, exc) from exc
    return digest.hexdigest()


def _digest_rows(rows: Mapping[str, Iterable[tuple[Any, ...]]]) -> str:
    digest = hashlib.sha256()
    for table, _, _ in _SQL_TABLES:
        for project, name, blob in rows.get(table, []):
            digest.update(f"{table}\x1f{project}\x1f{name}\x1f".encode())
            digest.update(hashlib.md5(blob, usedforsecurity=False).hexdigest().encode())
            digest.update(b"\x1e")
    return digest.hexdigest()


def _file_bytes(location: RegistryLocation, repo: RepoRef) -> bytes:
    if "://" not in location.path:
        try:
            return Path(location.path).read_bytes()
        except FileNotFoundError:
            raise RegistryUnavailable(
                f"Feast registry file {location.path} does not exist: run `feast apply` in {repo.path}"
            ) from None
        except OSError as exc:
            raise RegistryUnavailable(f"Feast registry file {location.path}: {exc.strerror}") from None
    # Remote file registries (s3://, gs://): Feast's own registry store does the I/O.
    from feast.infra.registry.registry import get_registry_store_class_from_scheme
    from feast.repo_config import RegistryConfig

    try:
        store_cls = get_registry_store_class_from_scheme(location.path)
        store = store_cls(RegistryConfig(path=location.path), repo.path)
        return bytes(store.get_registry_proto().SerializeToString())
    except Exception as exc:  # any backend failure means "unavailable" to the caller
        raise RegistryUnavailable(f"Feast registry at {location.path} is unreachable: {exc}") from exc


def registry_fingerprint(repo: RepoRef) -> str:
    """A cheap digest of the whole registry: equal digests mean nothing changed (not even materialization)."""
    location = registry_location(repo)
    if location.kind == "sql":
        return "sql:" + _sql_fingerprint(location)
    if location.kind == "file" and "://" not in location.path:
        try:
            with open(location.path, "rb") as handle:
                return "file:" + hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            raise RegistryUnavailable(
                f"Feast registry file {location.path} does not exist: run `feast apply` in {repo.path}"
            ) from None
    return "file:" + hashlib.sha256(_file_bytes(location, repo)).hexdigest()


def check_registry(repo: RepoRef) -> str:
    """Readiness probe: raise unless the registry can be read; returns a short description."""
    location = registry_location(repo)
    registry_fingerprint(repo)
    return f"{location.kind} registry {location.display}"


def read_registry(repo: RepoRef) -> RegistrySnapshot:
    """Read every object of the repo's registry (all projects it holds) as plain data."""
    location = registry_location(repo)
    if location.kind == "sql":
        rows = _read_sql_rows(location)
        proto = _feast().Registry()
        try:
            for table, field_name in [
                ("projects", "projects"),
                ("entities", "entities"),
                ("data_sources", "data_sources"),
                ("feature_views", "feature_views"),
                ("stream_feature_views", "stream_feature_views"),
                ("on_demand_feature_views", "on_demand_feature_views"),
                ("feature_services", "feature_services"),
            ]:
                container = getattr(proto, field_name)
                for project, _name, blob in rows[table]:
                    message = container.add()
                    message.ParseFromString(blob)
                    if table != "projects":
                        _set_project(message, project)
        except _feast().DecodeError as exc:
            raise RegistryCorrupt(f"Feast SQL registry at {location.display} holds an unreadable proto: {exc}") from exc
        fingerprint = "sql:" + (
            _sql_fingerprint(location) if location.path.startswith("postgresql") else _digest_rows(rows)
        )
        versions = [
            FeatureViewVersionInfo(
                project=r[0],
                feature_view=r[1],
                version_number=int(r[2]),
                view_type=str(r[3]),
                created_at=datetime.fromtimestamp(int(r[4]), tz=UTC) if r[4] else None,
                description=str(r[5] or ""),
                version_id=str(r[6]),
            )
            for r in rows.get("feature_view_version_history", [])
        ]
        return _snapshot_from_proto(proto, location, fingerprint, versions)
    blob = _file_bytes(location, repo)
    proto = _feast().Registry()
    try:
        proto.ParseFromString(blob)
    except _feast().DecodeError as exc:
        raise RegistryCorrupt(f"Feast registry file {location.path} is corrupt: {exc}") from exc
    fingerprint = "file:" + hashlib.sha256(blob).hexdigest()
    versions = [_version_from_record(r) for r in proto.feature_view_version_history.records]
    return _snapshot_from_proto(proto, location, fingerprint, versions)


def registry_dump_json(repo: RepoRef) -> dict[str, Any]:
    """The registry as `feast registry-dump` prints it (JSON of the registry proto), via the real CLI."""
    import json

    result = run_cli(repo, ["registry-dump"], timeout=300)
    if result.returncode != 0:
        raise RegistryUnavailable(f"feast registry-dump failed: {result.stderr.strip()[-500:]}")
    start = result.stdout.find("{")
    return dict(json.loads(result.stdout[start:]))


# --- Proto -> plain data -------------------------------------------------------------------------

_SOURCE_KINDS = {
    "BATCH_FILE": "file",
    "BATCH_SNOWFLAKE": "snowflake",
    "BATCH_BIGQUERY": "bigquery",
    "BATCH_REDSHIFT": "redshift",
    "STREAM_KAFKA": "kafka",
    "STREAM_KINESIS": "kinesis",
    "CUSTOM_SOURCE": "custom",
    "REQUEST_SOURCE": "request",
    "PUSH_SOURCE": "push",
    "BATCH_TRINO": "trino",
    "BATCH_SPARK": "spark",
    "BATCH_ATHENA": "athena",
    "BATCH_ICEBERG": "iceberg",
}

# Feast ValueType enum name -> the type name users write in definitions (feast.types).
_DTYPES = {
    "INVALID": "Invalid",
    "BYTES": "Bytes",
    "STRING": "String",
    "INT32": "Int32",
    "INT64": "Int64",
    "DOUBLE": "Float64",
    "FLOAT": "Float32",
    "BOOL": "Bool",
    "UNIX_TIMESTAMP": "UnixTimestamp",
    "NULL": "Null",
    "MAP": "Map",
    "JSON": "Json",
    "STRUCT": "Struct",
    "PDF_BYTES": "PdfBytes",
    "IMAGE_BYTES": "ImageBytes",
    "UUID": "Uuid",
    "TIME_UUID": "TimeUuid",
    "DECIMAL": "Decimal",
}


@cache
def dtype_name(value_type: int) -> str:
    """Feast's type name for a ValueType enum value (Float32, Array(Int64), ...)."""
    name = str(_feast().ValueType.Enum.Name(value_type))
    for suffix in ("_LIST", "_SET"):
        if name.endswith(suffix):
            inner = _DTYPES.get(name[: -len(suffix)], name[: -len(suffix)].title())
            return f"{'Array' if suffix == '_LIST' else 'Set'}({inner})"
    return _DTYPES.get(name, name.title())


def dtype_value(name: str) -> int:
    """The ValueType enum value for a type name (inverse of dtype_name)."""
    for number in _feast().ValueType.Enum.values():
        if dtype_name(number) == name:
            return int(number)
    raise ValueError(f"unknown dtype {name!r}")


def _ts(message: Any, field_name: str) -> datetime | None:
    if not message.HasField(field_name):
        return None
    value = getattr(message, field_name)
    if value.seconds == 0 and value.nanos == 0:
        return None
    return datetime.fromtimestamp(value.seconds + value.nanos / 1e9, tz=UTC)


def _to_dict(message: Message) -> dict[str, Any]:
    return dict(_feast().json_format.MessageToDict(message, preserving_proto_field_name=True))


_VOLATILE_TYPES = {"feast.core.DataSource", "feast.core.UserDefinedFunction", "feast.core.UserDefinedFunctionV2"}


@cache
def _may_hold_volatile(full_name: str) -> bool:
    """Whether messages of this type can (transitively) contain a DataSource or a UDF."""
    from google.protobuf import symbol_database

    pool = symbol_database.Default().pool
    seen: set[str] = set()
    stack = [pool.FindMessageTypeByName(full_name)]
    while stack:
        descriptor = stack.pop()
        if descriptor.full_name in _VOLATILE_TYPES:
            return True
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        stack.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return False


def _strip_volatile(message: Message) -> None:
    """Clear what Feast rewrites without a user change: metadata of data sources embedded anywhere."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or not _may_hold_volatile(descriptor.message_type.full_name):
            continue
        if descriptor.is_repeated:
            if descriptor.message_type.GetOptions().map_entry:
                value_field = descriptor.message_type.fields_by_name["value"]
                if value_field.message_type is not None:
                    for item in value.values():
                        _strip_volatile(item)
                continue
            for item in value:
                _strip_volatile(item)
        else:
            _strip_volatile(value)
    if isinstance(message, _feast().DataSource):
        message.ClearField("meta")
        message.ClearField("project")
    elif message.DESCRIPTOR.name in {"UserDefinedFunction", "UserDefinedFunctionV2"} and message.body_text:
        # The dill pickle of a UDF changes with re-serialization (and Python versions) even when the
        # code does not; body_text, the source the user wrote, is the content.
        message.ClearField("body")


def _content(spec: Message) -> tuple[Spec, str]:
    """The normalized spec (JSON on demand) plus its content hash (deterministic serialization)."""
    clean = type(spec)()
    clean.CopyFrom(spec)
    _strip_volatile(clean)
    if "project" in clean.DESCRIPTOR.fields_by_name:
        clean.ClearField("project")
    digest = hashlib.sha256(clean.SerializeToString(deterministic=True)).hexdigest()
    return Spec(clean), digest


def _set_project(message: Message, project: str) -> None:
    if "spec" in message.DESCRIPTOR.fields_by_name:
        message.spec.project = project
    else:
        message.project = project


def _features(specs: Iterable[Any]) -> list[FeatureInfo]:
    return [
        FeatureInfo(
            name=f.name, dtype=dtype_name(f.value_type), description=f.description, tags=dict(f.tags), position=i
        )
        for i, f in enumerate(specs)
    ]


def _source_location(ds: DataSourceProto) -> str:
    for option, attrs in [
        ("file_options", ("uri",)),
        ("bigquery_options", ("table", "query")),
        ("redshift_options", ("table", "query")),
        ("snowflake_options", ("table", "query")),
        ("trino_options", ("table", "query")),
        ("spark_options", ("table", "path", "query")),
        ("athena_options", ("table", "query")),
        ("kafka_options", ("topic",)),
        ("kinesis_options", ("stream_name",)),
    ]:
        if ds.HasField(option):  # type: ignore[arg-type]
            options = getattr(ds, option)
            for attr in attrs:
                value = getattr(options, attr, "")
                if value:
                    return str(value)
    return ""


def _data_source(ds: DataSourceProto, project: str) -> DataSourceInfo:
    spec, digest = _content(ds)
    kind = _SOURCE_KINDS.get(_feast().DataSource.SourceType.Name(ds.type), "unknown")
    return DataSourceInfo(
        project=project,
        name=ds.name,
        description=ds.description,
        owner=ds.owner,
        tags=dict(ds.tags),
        created_at=_ts(ds.meta, "created_timestamp") if ds.HasField("meta") else None,
        updated_at=_ts(ds.meta, "last_updated_timestamp") if ds.HasField("meta") else None,
        content=spec,
        content_hash=digest,
        kind=kind,
        location=_source_location(ds),
        timestamp_field=ds.timestamp_field,
        created_timestamp_column=ds.created_timestamp_column,
        batch_source=ds.batch_source.name if ds.HasField("batch_source") else "",
        request_schema=(
            [
                FeatureInfo(
                    name=f.name,
                    dtype=dtype_name(f.value_type),
                    description=f.description,
                    tags=dict(f.tags),
                    position=i,
                )
                for i, f in enumerate(ds.request_data_options.schema)
            ]
            if ds.HasField("request_data_options")
            else []
        ),
    )


def _intervals(meta: Any) -> list[MaterializationInterval]:
    out = []
    for interval in meta.materialization_intervals:
        start, end = _ts(interval, "start_time"), _ts(interval, "end_time")
        if start and end:
            out.append(MaterializationInterval(start=start, end=end))
    return out


def _feature_view(proto: Any, kind: str, project: str) -> FeatureViewInfo:
    spec_msg, meta = proto.spec, proto.meta
    spec, digest = _content(spec_msg)
    source_views: list[str] = []
    request_sources: list[str] = []
    batch_source = stream_source = ""
    if kind == "on_demand":
        for source in spec_msg.sources.values():
            which = source.WhichOneof("source")
            if which == "feature_view":
                source_views.append(source.feature_view.spec.name)
            elif which == "feature_view_projection":
                source_views.append(source.feature_view_projection.feature_view_name)
            elif which == "request_data_source":
                request_sources.append(source.request_data_source.name)
        udf = spec_msg.feature_transformation.user_defined_function
        udf_source = udf.body_text or spec_msg.user_defined_function.body_text
    else:
        batch_source = spec_msg.batch_source.name if spec_msg.HasField("batch_source") else ""
        stream_source = spec_msg.stream_source.name if spec_msg.HasField("stream_source") else ""
        source_views = [v.name for v in getattr(spec_msg, "source_views", [])]
        udf_source = ""
        if kind == "stream" and spec_msg.HasField("user_defined_function"):
            udf_source = spec_msg.user_defined_function.body_text
    ttl = spec_msg.ttl.seconds if kind != "on_demand" and spec_msg.HasField("ttl") else None
    state = ""
    if "state" in meta.DESCRIPTOR.fields_by_name:
        enum = meta.DESCRIPTOR.fields_by_name["state"].enum_type
        state = enum.values_by_number[meta.state].name if meta.state in enum.values_by_number else ""
    return FeatureViewInfo(
        project=project,
        name=spec_msg.name,
        description=spec_msg.description,
        owner=spec_msg.owner,
        tags=dict(spec_msg.tags),
        created_at=_ts(meta, "created_timestamp"),
        updated_at=_ts(meta, "last_updated_timestamp"),
        content=spec,
        content_hash=digest,
        kind=kind,
        # Feast stores a stream view's entity column among its features too; a view's features are its
        # non-entity fields (positions renumbered in declared order).
        features=_features(
            f for f in spec_msg.features if f.name not in {c.name for c in getattr(spec_msg, "entity_columns", [])}
        ),
        entities=[e for e in spec_msg.entities if e != "__dummy"],
        entity_columns=_features(spec_msg.entity_columns),
        ttl_seconds=ttl or None,
        batch_source=batch_source,
        stream_source=stream_source,
        source_views=source_views,
        request_sources=request_sources,
        online=bool(getattr(spec_msg, "online", kind == "on_demand" and spec_msg.write_to_online_store)),
        offline=bool(getattr(spec_msg, "offline", False)),
        enabled=not bool(getattr(spec_msg, "disabled", False)),
        state=state,
        version=str(getattr(spec_msg, "version", "") or ""),
        current_version_number=(
            int(meta.current_version_number)
            if "current_version_number" in meta.DESCRIPTOR.fields_by_name and meta.current_version_number
            else None
        ),
        materialization_intervals=_intervals(meta)
        if "materialization_intervals" in meta.DESCRIPTOR.fields_by_name
        else [],
        mode=str(getattr(spec_msg, "mode", "") or ""),
        udf_source=udf_source,
    )


def _feature_service(proto: FeatureServiceProto, project: str) -> FeatureServiceInfo:
    spec_msg = proto.spec
    spec, digest = _content(spec_msg)
    vector: list[VectorEntry] = []
    views: list[str] = []
    for projection in spec_msg.features:
        views.append(projection.feature_view_name)
        for column in projection.feature_columns:
            vector.append(
                VectorEntry(
                    index=len(vector),
                    feature_view=projection.feature_view_name,
                    view_alias=projection.feature_view_name_alias,
                    feature=column.name,
                    dtype=dtype_name(column.value_type),
                )
            )
    return FeatureServiceInfo(
        project=project,
        name=spec_msg.name,
        description=spec_msg.description,
        owner=spec_msg.owner,
        tags=dict(spec_msg.tags),
        created_at=_ts(proto.meta, "created_timestamp"),
        updated_at=_ts(proto.meta, "last_updated_timestamp"),
        content=spec,
        content_hash=digest,
        vector=vector,
        views=views,
    )


def _version_from_record(record: FeatureViewVersionRecord) -> FeatureViewVersionInfo:
    return FeatureViewVersionInfo(
        project=record.project_id,
        feature_view=record.feature_view_name,
        version_number=record.version_number,
        view_type=record.feature_view_type,
        created_at=_ts(record, "created_timestamp"),
        description=record.description,
        version_id=record.version_id,
    )


def _snapshot_from_proto(
    proto: RegistryProto,
    location: RegistryLocation,
    fingerprint: str,
    versions: list[FeatureViewVersionInfo],
) -> RegistrySnapshot:
    snap = RegistrySnapshot(location=location, fingerprint=fingerprint, feature_view_versions=versions)
    project_names: list[str] = []
    for p in proto.projects:
        spec, digest = _content(p.spec)
        project_names.append(p.spec.name)
        snap.projects.append(
            ProjectInfo(
                project=p.spec.name,
                name=p.spec.name,
                description=p.spec.description,
                owner=p.spec.owner,
                tags=dict(p.spec.tags),
                created_at=_ts(p.meta, "created_timestamp"),
                updated_at=_ts(p.meta, "last_updated_timestamp"),
                content=spec,
                content_hash=digest,
            )
        )
    for e in proto.entities:
        if e.spec.name == "__dummy":  # Feast's placeholder for entity-less views
            continue
        spec, digest = _content(e.spec)
        snap.entities.append(
            EntityInfo(
                project=e.spec.project,
                name=e.spec.name,
                description=e.spec.description,
                owner=e.spec.owner,
                tags=dict(e.spec.tags),
                created_at=_ts(e.meta, "created_timestamp"),
                updated_at=_ts(e.meta, "last_updated_timestamp"),
                content=spec,
                content_hash=digest,
                join_keys=[e.spec.join_key] if e.spec.join_key else [],
                value_type=dtype_name(e.spec.value_type),
            )
        )
    seen_sources: set[tuple[str, str]] = set()
    for ds in proto.data_sources:
        snap.data_sources.append(_data_source(ds, ds.project))
        seen_sources.add((ds.project, ds.name))
    for kind, container in [
        ("batch", proto.feature_views),
        ("stream", proto.stream_feature_views),
        ("on_demand", proto.on_demand_feature_views),
    ]:
        for fv in container:
            try:
                info = _feature_view(fv, kind, fv.spec.project)
            except (ValueError, AttributeError, KeyError) as exc:
                snap.skipped.append(f"{kind} feature view {fv.spec.project}/{fv.spec.name}: {exc}")
                continue
            snap.feature_views.append(info)
            # Sources used only inline (not registered separately) still belong in the catalog.
            for field_name in ("batch_source", "stream_source"):
                if kind != "on_demand" and fv.spec.HasField(field_name):
                    inline = getattr(fv.spec, field_name)
                    if inline.name and (fv.spec.project, inline.name) not in seen_sources:
                        seen_sources.add((fv.spec.project, inline.name))
                        snap.data_sources.append(_data_source(inline, fv.spec.project))
    for fs in proto.feature_services:
        snap.feature_services.append(_feature_service(fs, fs.spec.project))
    # A file registry written by an older Feast may lack the projects list: derive it.
    known = set(project_names)
    for obj in [*snap.entities, *snap.data_sources, *snap.feature_views, *snap.feature_services]:
        if obj.project not in known:
            known.add(obj.project)
            snap.projects.append(
                ProjectInfo(
                    project=obj.project,
                    name=obj.project,
                    description="",
                    owner="",
                    tags={},
                    created_at=None,
                    updated_at=None,
                    content=Spec(json={"name": obj.project}),
                    content_hash=hashlib.sha256(obj.project.encode()).hexdigest(),
                )
            )
    return snap


# --- Online store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineValue:
    """One feature value of one entity row, at its canonical index."""

    index: int
    feature_view: str
    feature: str
    reference: str
    dtype: str
    value: Any
    status: str  # PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE
    event_timestamp: datetime | None


@dataclass(frozen=True)
class OnlineRead:
    """Online values per entity row, each row ordered by the registry's declared vector order."""

    vector: list[VectorEntry]
    entity_rows: list[dict[str, Any]]
    rows: list[list[OnlineValue]]
    response_order: list[str]  # the order Feast returned (string-hash order within a view: never trust it)


_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def _store(repo: RepoRef) -> Any:
    """A FeatureStore for the repo, built from its YAML alone (no definition code is imported)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    with _stores_lock:
        if repo.key not in _stores:
            raw = _raw_config(repo)
            try:
                config = RepoConfig(**raw)
            except Exception as exc:  # pydantic's ValidationError and Feast's config errors
                raise FeastConfigInvalid(f"{repo.yaml_path} is not a valid Feast configuration: {exc}") from exc
            config.repo_path = repo.path
            _stores[repo.key] = FeatureStore(config=config, repo_path=str(repo.path))
        return _stores[repo.key]


def reset_stores() -> None:
    """Forget cached FeatureStores (tests; after the registry location changes)."""
    with _stores_lock:
        _stores.clear()


def online_read(repo: RepoRef, *, feature_service: str, entity_rows: list[dict[str, Any]]) -> OnlineRead:
    """Read a feature service's vector online for each entity row, reordered by the registry's order.

    Feast 0.67 returns features within a view in string-hash order (`defaultdict(set)` in
    feast/utils.py::_group_feature_refs), which changes with PYTHONHASHSEED. The vector order comes
    from the registry's declared projections instead.
    """

    store = _store(repo)
    service = store.get_feature_service(feature_service, allow_cache=False)
    info = _feature_service(service.to_proto(), store.project)
    response = store.get_online_features(features=service, entity_rows=entity_rows, full_feature_names=True)
    return _online_result(response, info.vector, entity_rows)


def _online_result(response: Any, vector: list[VectorEntry], entity_rows: list[dict[str, Any]]) -> OnlineRead:
    """Feast's online response, reordered by the vector (the registry's declared order)."""
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus
    from feast.type_map import feast_value_type_to_python_type

    names = list(response.proto.metadata.feature_names.val)
    position = {name: i for i, name in enumerate(names)}
    rows: list[list[OnlineValue]] = []
    for r in range(len(entity_rows)):
        row: list[OnlineValue] = []
        for entry in vector:
            result = response.proto.results[position[f"{entry.view_alias or entry.feature_view}__{entry.feature}"]]
            ts = result.event_timestamps[r] if r < len(result.event_timestamps) else None
            status = FieldStatus.Name(result.statuses[r])
            if status == "PRESENT" and result.values[r].WhichOneof("val") is None and not (ts and ts.seconds):
                # Feast 0.67's Redis store answers PRESENT with an empty value and no timestamp for a key
                # it does not hold; that is "not found", not a present null.
                status = "NOT_FOUND"
            row.append(
                OnlineValue(
                    index=entry.index,
                    feature_view=entry.feature_view,
                    feature=entry.feature,
                    reference=entry.reference,
                    dtype=entry.dtype,
                    value=feast_value_type_to_python_type(result.values[r]),
                    status=status,
                    event_timestamp=(
                        datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=UTC) if ts and ts.seconds else None
                    ),
                )
            )
        rows.append(row)
    return OnlineRead(vector=vector, entity_rows=entity_rows, rows=rows, response_order=names)


# --- Materialization (per view, in time chunks, batched online writes) ----------------------------


class OnlineStoreUnavailable(PortalError):
    """The Feast online store (Redis, SQLite ...) cannot be reached right now."""

    status_code = 503
    code = "unavailable"


class MaterializeFilterInvalid(PortalError):
    """A `materialize_filter` tag is not an allowed comparison expression."""


MATERIALIZE_FILTER_TAG = "materialize_filter"


@dataclass(frozen=True)
class MaterializationTarget:
    """One view to materialize over [start, end), resolved the way Feast resolves it."""

    project: str
    view: str
    start: datetime
    end: datetime
    ttl_seconds: int | None
    filter: str  # the view's materialize_filter tag ("" when none)
    state: str  # Feast's FeatureViewState name before the run (MATERIALIZING is shown in the UI)


@dataclass(frozen=True)
class ChunkResult:
    """One time chunk of one view: what was read from the offline store and written online."""

    start: datetime
    end: datetime
    rows_read: int
    rows_written: int
    rows_filtered: int
    seconds: float


_FILTER_OPS = {"Eq": "==", "NotEq": "!=", "Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">="}


def parse_materialize_filter(text: str) -> Any:
    """Parse a `materialize_filter` tag into a pyarrow compute Expression, never evaluating code.

    Grammar (allow-listed AST nodes only): ``column OP literal`` with OP in == != < <= > >=, ``column in
    [literals]``, combined with ``and`` / ``or`` / ``not`` and parentheses. Literals are numbers,
    strings, True/False/None. Anything else (calls, attributes, arithmetic, subscripts) is refused.
    """
    import ast

    import pyarrow.compute as pc

    if len(text) > 500:
        raise MaterializeFilterInvalid("materialize_filter is longer than 500 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise MaterializeFilterInvalid(f"materialize_filter {text!r} is not a valid expression: {exc.msg}") from None

    def literal(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool | type(None)):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)
        ):
            return -node.operand.value
        raise MaterializeFilterInvalid(f"materialize_filter {text!r}: only literal values may follow an operator")

    def convert(node: ast.AST) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = [convert(v) for v in node.values]
            out = parts[0]
            for part in parts[1:]:
                out = (out & part) if isinstance(node.op, ast.And) else (out | part)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~convert(node.operand)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name):
            column = pc.field(node.left.id)
            op = type(node.ops[0]).__name__
            right = node.comparators[0]
            if op in ("In", "NotIn") and isinstance(right, ast.List | ast.Tuple):
                values = [literal(v) for v in right.elts]
                member = column.isin(values)
                return member if op == "In" else ~member
            if op in _FILTER_OPS:
                value = literal(right)
                if value is None and op in ("Eq", "NotEq"):
                    return column.is_null() if op == "Eq" else ~column.is_null()
                return {
                    "Eq": column == value,
                    "NotEq": column != value,
                    "Lt": column < value,
                    "LtE": column <= value,
                    "Gt": column > value,
                    "GtE": column >= value,
                }[op]
        raise MaterializeFilterInvalid(
            f"materialize_filter {text!r}: use `column OP literal` (== != < <= > >= in), and/or/not, parentheses"
        )

    return convert(tree.body)


def materialize_filter_columns(text: str) -> list[str]:
    """The column names a `materialize_filter` reads (validated by parsing it)."""
    import ast

    parse_materialize_filter(text)
    names = [n.id for n in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def _online_error(repo: RepoRef, exc: Exception) -> OnlineStoreUnavailable:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    store_type = str(_raw_config(repo).get("online_store", {}).get("type", "online store"))
    return OnlineStoreUnavailable(f"Feast online store ({store_type}) is unreachable: {first_line}")


def _is_connection_error(exc: Exception) -> bool:
    import redis

    return isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | ConnectionError)


def _registry_call(location_repo: RepoRef, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from sqlalchemy.exc import OperationalError

    try:
        return fn(*args, **kwargs)
    except OperationalError as exc:
        raise _sql_error(registry_location(location_repo), exc) from exc


def _materializable_views(repo: RepoRef, views: Sequence[str] | None) -> list[Any]:
    """Batch and stream feature views Feast would materialize (online, enabled), registry order."""
    from feast.errors import FeatureViewNotFoundException
    from feast.on_demand_feature_view import OnDemandFeatureView

    store = _registry_call(repo, _store, repo)
    try:
        found = _registry_call(repo, store._get_feature_views_to_materialize, list(views) if views else None)
    except FeatureViewNotFoundException as exc:
        raise ObjectNotFound(str(exc)) from None
    except ValueError as exc:  # "not configured for materialization" (online=False)
        raise InvalidInput(str(exc)) from None
    return [fv for fv in found if not isinstance(fv, OnDemandFeatureView)]


def _local_parquet_path(store: Any, data_source: Any) -> str | None:
    """The local parquet file/directory of a FileSource on the file (dask) offline store, else None."""
    from feast.data_format import ParquetFormat
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.offline_stores.file_source import FileSource

    if not isinstance(store.config.offline_store, DaskOfflineStoreConfig) or not isinstance(data_source, FileSource):
        return None
    if data_source.file_format is not None and not isinstance(data_source.file_format, ParquetFormat):
        return None
    uri = FileSource.get_uri_for_file_path(repo_path=store.config.repo_path, uri=data_source.file_options.uri)
    if "://" in uri and not uri.startswith("file://"):
        return None
    return uri.removeprefix("file://")


def _pull_latest(
    store: Any,
    data_source: Any,
    *,
    join_keys: list[str],
    columns: list[str],
    ts_col: str,
    created_col: str | None,
    start: datetime,
    end: datetime,
) -> Any:
    """The latest row per entity with its timestamp in [start, end], as a pyarrow Table.

    Same result as Feast's `pull_latest_from_table_or_query` (latest by event, then created timestamp;
    both ends inclusive, as the file offline store does). For local parquet sources it reads with
    pyarrow directly: the time filter and the column list are pushed down, so only the chunk's rows and
    the needed columns are loaded (Feast's dask store reads the whole file for every call). Other
    sources go through the offline store.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as pads

    path = _local_parquet_path(store, data_source)
    if path is None:
        return (
            store._get_provider()
            .offline_store.pull_latest_from_table_or_query(
                config=store.config,
                data_source=data_source,
                join_key_columns=join_keys,
                feature_name_columns=columns,
                timestamp_field=ts_col,
                created_timestamp_column=created_col,
                start_date=start,
                end_date=end,
            )
            .to_arrow()
        )
    dataset = pads.dataset(path, format="parquet")
    ts_type = dataset.schema.field(ts_col).type
    bounds = [start.astimezone(UTC), end.astimezone(UTC)]
    if getattr(ts_type, "tz", None) is None:
        bounds = [b.replace(tzinfo=None) for b in bounds]
    low, high = (pa.scalar(b, type=ts_type) for b in bounds)
    wanted = list(dict.fromkeys([*join_keys, *columns, ts_col, *([created_col] if created_col else [])]))
    table = dataset.to_table(columns=wanted, filter=(pads.field(ts_col) >= low) & (pads.field(ts_col) <= high))
    if not join_keys or table.num_rows < 2:
        return table
    order = [(k, "ascending") for k in join_keys] + [(ts_col, "ascending")]
    if created_col:
        order.append((created_col, "ascending"))
    table = table.sort_by(order)
    changes = np.zeros(table.num_rows - 1, dtype=bool)
    for key in join_keys:
        values = table[key].to_numpy(zero_copy_only=False)
        changes |= values[1:] != values[:-1]
    return table.filter(pa.array(np.append(changes, True)))


def materialization_targets(
    repo: RepoRef, *, views: Sequence[str] | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[MaterializationTarget]:
    """What a run would materialize: per view, [start, end). Without `start`, incremental as Feast does it
    (from the view's latest materialized end, else now - ttl); views already up to date are left out."""
    store = _registry_call(repo, _store, repo)
    _registry_call(repo, store.refresh_registry)
    end = end or datetime.now(UTC)
    if start is not None and start >= end:
        raise InvalidInput("start must be before end", {"start": ["must be before end"]})
    targets: list[MaterializationTarget] = []
    for fv in _materializable_views(repo, views):
        view_start = start
        if view_start is None:
            view_start = fv.most_recent_end_time
            if view_start is None:
                if not fv.ttl or fv.ttl.total_seconds() <= 0:
                    raise InvalidInput(
                        f"{fv.name} has no TTL and was never materialized: give a start date for its first run",
                        {"start": ["required for a first materialization of a view without TTL"]},
                    )
                view_start = datetime.now(UTC) - fv.ttl
        view_start = view_start if view_start.tzinfo else view_start.replace(tzinfo=UTC)
        if view_start >= end:
            continue
        state = getattr(fv, "state", None)
        targets.append(
            MaterializationTarget(
                project=store.project,
                view=fv.name,
                start=view_start,
                end=end,
                ttl_seconds=int(fv.ttl.total_seconds()) if fv.ttl else None,
                filter=str(fv.tags.get(MATERIALIZE_FILTER_TAG, "")),
                state=state.name if state is not None else "",
            )
        )
    return targets


def _set_view_state(store: Any, fv: Any, target: str) -> str | None:
    """Move a view to a FeatureViewState as Feast does (returns the previous state name, None if unchanged)."""
    from feast.feature_view import FeatureViewState

    current = getattr(fv, "state", None)
    if current is None or current == FeatureViewState.STATE_UNSPECIFIED:
        return None
    wanted = FeatureViewState[target]
    if current == wanted:
        return None
    if not current.can_transition_to(wanted):
        raise InvalidInput(f"feature view {fv.name} cannot go from {current.name} to {wanted.name}")
    previous = str(current.name)
    fv.state = wanted
    store.registry.apply_feature_view(fv, store.project, commit=True)
    return previous


# Feast value types the portal converts itself; identical protos to Feast's `_convert_arrow_to_proto`
# (tests/jobs/test_materialization.py compares them), about 3x faster: Feast calls pandas.isna and
# builds a kwargs dict per value, and converts timestamps through pandas one by one.
_FAST_VALUE_FIELDS = {
    "INT64": "int64_val",
    "INT32": "int32_val",
    "FLOAT": "float_val",
    "DOUBLE": "double_val",
    "STRING": "string_val",
    "BOOL": "bool_val",
}


def _value_protos(array: Any, attr: str) -> list[Any]:
    from feast.protos.feast.types.Value_pb2 import Value

    empty = Value()
    floats = attr in ("float_val", "double_val")
    make: Callable[[Any], Any] = {
        "int64_val": lambda v: Value(int64_val=v),
        "int32_val": lambda v: Value(int32_val=v),
        "float_val": lambda v: Value(float_val=v),
        "double_val": lambda v: Value(double_val=v),
        "string_val": lambda v: Value(string_val=v),
        "bool_val": lambda v: Value(bool_val=v),
    }[attr]
    if floats:  # NaN is "missing" for Feast (pandas.isna), like null
        return [empty if v is None or math.isnan(v) else make(v) for v in array.to_pylist()]
    return [empty if v is None else make(v) for v in array.to_pylist()]


def _naive_utc_datetimes(array: Any) -> list[Any]:
    """Timestamps as naive UTC datetimes (what Feast's conversion produces), via numpy in C."""
    import pyarrow as pa

    return list(array.cast(pa.timestamp("us"), safe=False).to_numpy(zero_copy_only=False).tolist())


def convert_rows_for_online_write(batch: Any, fv: Any, join_key_types: dict[str, Any]) -> list[Any]:
    """A record batch as Feast's online-write rows: (entity key, {feature: Value}, event ts, created ts).

    Scalar int/float/string/bool views are converted here; any other type goes through Feast's own
    `_convert_arrow_to_proto`.
    """
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.utils import _convert_arrow_to_proto

    columns = [(f.name, f.dtype.to_value_type()) for f in fv.features] + list(join_key_types.items())
    names = batch.schema.names
    if any(_FAST_VALUE_FIELDS.get(vt.name) is None or name not in names for name, vt in columns):
        return list(_convert_arrow_to_proto(batch, fv, join_key_types))
    values = {name: _value_protos(batch.column(name), _FAST_VALUE_FIELDS[vt.name]) for name, vt in columns}
    keys = list(join_key_types)
    key_columns = [values[k] for k in keys]
    entity_keys = [EntityKey(join_keys=keys, entity_values=list(vs)) for vs in zip(*key_columns, strict=True)]
    feature_names = [f.name for f in fv.features]
    features = [
        dict(zip(feature_names, row, strict=True)) for row in zip(*(values[n] for n in feature_names), strict=True)
    ]
    event = _naive_utc_datetimes(batch.column(fv.batch_source.timestamp_field))
    created_col = fv.batch_source.created_timestamp_column
    created = _naive_utc_datetimes(batch.column(created_col)) if created_col else [None] * batch.num_rows
    return list(zip(entity_keys, features, event, created, strict=True))


def _write_online(
    store: Any, provider: Any, fv: Any, table: Any, join_key_types: dict[str, Any], batch_size: int
) -> int:
    """Write a table online in batches of `batch_size` rows; returns the rows written.

    Each batch becomes protos (`convert_rows_for_online_write`, the same rows Feast's
    `_convert_arrow_to_proto` builds) and `online_write_batch` writes it, as the local engine does.
    Besides the faster conversion, two things make it faster than `feast materialize`: Python's cyclic
    garbage collector is paused while the protos are built and written (hundreds of thousands of
    short-lived, acyclic objects per batch otherwise trigger repeated full collections: about 45% of
    the time), and with Redis the next batch is converted while the previous one is being written (a
    single writer thread). Other stores write inline, from this thread.
    """
    import gc

    if not table.num_rows:
        return 0
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _write_batches(store, provider, fv, table, join_key_types, batch_size)
    finally:
        if collecting:
            gc.enable()


def _write_batches(
    store: Any, provider: Any, fv: Any, table: Any, join_key_types: dict[str, Any], batch_size: int
) -> int:
    from concurrent.futures import Future, ThreadPoolExecutor

    batches = table.combine_chunks().to_batches(max_chunksize=batch_size)
    written = 0
    if str(getattr(store.config.online_store, "type", "")) != "redis":
        for batch in batches:
            provider.online_write_batch(
                config=store.config,
                table=fv,
                data=convert_rows_for_online_write(batch, fv, join_key_types),
                progress=None,
            )
            written += batch.num_rows
        return written
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="online-write") as writer:
        pending: Future[Any] | None = None
        for batch in batches:
            rows = convert_rows_for_online_write(batch, fv, join_key_types)
            if pending is not None:
                pending.result()  # at most one batch in flight: memory stays at two batches
            pending = writer.submit(
                provider.online_write_batch, config=store.config, table=fv, data=rows, progress=None
            )
            written += batch.num_rows
            del rows
        if pending is not None:
            pending.result()
    return written


def materialize_view(
    repo: RepoRef,
    *,
    view: str,
    start: datetime,
    end: datetime,
    chunk: timedelta,
    batch_size: int,
    on_chunk: Callable[[ChunkResult], None] | None = None,
) -> list[ChunkResult]:
    """Materialize one view over [start, end) in time chunks, as Feast's local engine does, plus the filter.

    Per chunk: the view goes to MATERIALIZING (Feast >= 0.64 does not serve it in that state, so chunks
    stay short), the latest row per entity in the chunk is read from the offline store
    (`pull_latest_from_table_or_query`), the view's `materialize_filter` tag is applied (Feast 0.67's
    local engine does not run BatchFeatureView UDFs), rows go online in batches of `batch_size`
    (`online_write_batch`: memory stays flat), and the chunk is recorded with
    `registry.apply_materialization`, which also sets AVAILABLE_ONLINE, exactly like
    `feast materialize`, so `feast materialize-incremental` and the catalog continue from it.
    A failed chunk rolls the state back and raises; earlier chunks stay recorded.
    """
    import pyarrow as pa
    from feast.utils import _get_column_names, _run_pyarrow_field_mapping

    store = _registry_call(repo, _store, repo)
    _registry_call(repo, store.refresh_registry)
    fvs = _materializable_views(repo, [view])
    if not fvs:
        raise InvalidInput(f"{view} is an on-demand view: nothing to materialize")
    fv = fvs[0]
    filter_text = str(fv.tags.get(MATERIALIZE_FILTER_TAG, "")).strip()
    expression = parse_materialize_filter(filter_text) if filter_text else None
    filter_columns = materialize_filter_columns(filter_text) if filter_text else []
    provider = store._get_provider()
    entities = [store.get_entity(name) for name in fv.entities if name != "__dummy"]
    join_keys, feature_cols, ts_col, created_col = _get_column_names(fv, entities)
    extra = [c for c in filter_columns if c not in {*join_keys, *feature_cols, ts_col, created_col}]
    join_key_types = {col.name: col.dtype.to_value_type() for col in fv.entity_columns}
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    excluded = None
    if expression is not None:
        # The filter is about an entity's latest state in [start, end): an employee who left during the
        # range must not be served from an earlier, still-active chunk. One cheap pass over the keys and
        # filter columns finds the entities whose latest row fails the filter; every chunk drops them.
        pre_columns = [c for c in filter_columns if c not in {*join_keys, ts_col, created_col}]
        try:
            latest = _pull_latest(
                store,
                fv.batch_source,
                join_keys=join_keys,
                columns=pre_columns,
                ts_col=ts_col,
                created_col=created_col,
                start=start,
                end=end,
            )
        except (KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise MaterializeFilterInvalid(
                f"materialize_filter {filter_text!r} of {view} cannot be applied to its source: {exc}"
            ) from exc
        missing = [c for c in filter_columns if c not in latest.column_names]
        if missing:
            raise MaterializeFilterInvalid(
                f"materialize_filter of {view} names {', '.join(missing)}, not a column of its source"
            )
        excluded = latest.filter(~expression).select(join_keys) if latest.num_rows else None
        del latest
    results: list[ChunkResult] = []
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + chunk, end)
        started = time.monotonic()
        previous = _registry_call(repo, _set_view_state, store, fv, "MATERIALIZING")
        try:
            table = _pull_latest(
                store,
                fv.batch_source,
                join_keys=join_keys,
                columns=[*feature_cols, *extra],
                ts_col=ts_col,
                created_col=created_col,
                start=chunk_start,
                end=chunk_end,
            )
            rows_read = table.num_rows
            if expression is not None and rows_read:
                table = table.filter(expression)
                if excluded is not None and excluded.num_rows and table.num_rows:
                    table = table.join(excluded, keys=join_keys, join_type="left anti")
            if fv.batch_source.field_mapping:
                table = _run_pyarrow_field_mapping(table, fv.batch_source.field_mapping)
            written = _write_online(store, provider, fv, table, join_key_types, batch_size)
            del table
            _registry_call(repo, store.registry.apply_materialization, fv, store.project, chunk_start, chunk_end)
        except Exception as exc:
            if previous is not None:
                try:
                    latest = store.registry.get_any_feature_view(view, store.project, allow_cache=False)
                    latest.state = type(latest.state)[previous]
                    store.registry.apply_feature_view(latest, store.project, commit=True)
                except Exception:  # the original error matters more than a failed rollback
                    logger.exception("could not roll %s back to %s", view, previous)
            if _is_connection_error(exc):
                raise _online_error(repo, exc) from exc
            raise
        # the registry's current copy (new interval, AVAILABLE_ONLINE): a stale copy applied by the next
        # state change would drop this chunk's interval
        fv = _registry_call(repo, store.registry.get_any_feature_view, view, store.project, allow_cache=False)
        result = ChunkResult(
            start=chunk_start,
            end=chunk_end,
            rows_read=rows_read,
            rows_written=written,
            rows_filtered=rows_read - written,
            seconds=time.monotonic() - started,
        )
        results.append(result)
        if on_chunk is not None:
            on_chunk(result)
        chunk_start = chunk_end
    return results


# --- Online preview (the worker side of the portal's online preview) ------------------------------


def _feature_refs_vector(store: Any, features: Sequence[str]) -> list[VectorEntry]:
    """The vector for a `features` list (`view:feature`), in the order requested."""
    from feast.errors import FeastObjectNotFoundException

    vector: list[VectorEntry] = []
    for ref in features:
        view_name, _, feature = ref.partition(":")
        fv: Any = None
        for getter in (store.get_feature_view, store.get_on_demand_feature_view, store.get_stream_feature_view):
            try:
                fv = getter(view_name)
                break
            except FeastObjectNotFoundException:  # try the next kind of view
                continue
        if fv is None:
            raise ObjectNotFound(f"feature view {view_name} does not exist")
        dtype = next((dtype_name(f.dtype.to_value_type().value) for f in fv.features if f.name == feature), None)
        if dtype is None:
            raise ObjectNotFound(f"feature view {view_name} has no feature {feature}")
        vector.append(
            VectorEntry(index=len(vector), feature_view=view_name, view_alias="", feature=feature, dtype=dtype)
        )
    return vector


def online_preview(
    repo: RepoRef,
    *,
    entity_rows: list[dict[str, Any]],
    feature_service: str | None = None,
    features: Sequence[str] | None = None,
) -> OnlineRead:
    """Online values for a feature service or a `features` list, each row in canonical order.

    A service is read with `online_read` (the registry's vector order); a features list keeps the order
    it was given in, never the order of Feast's response. Connection failures become
    OnlineStoreUnavailable with a one-line message.
    """
    try:
        if feature_service:
            return online_read(repo, feature_service=feature_service, entity_rows=entity_rows)
        return _online_read_refs(repo, features=list(features or []), entity_rows=entity_rows)
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if _is_connection_error(exc):
            raise _online_error(repo, exc) from exc
        if isinstance(exc, OperationalError):
            raise _sql_error(registry_location(repo), exc) from exc
        raise


def _online_read_refs(repo: RepoRef, *, features: list[str], entity_rows: list[dict[str, Any]]) -> OnlineRead:

    store = _registry_call(repo, _store, repo)
    vector = _feature_refs_vector(store, features)
    response = store.get_online_features(features=features, entity_rows=entity_rows, full_feature_names=True)
    return _online_result(response, vector, entity_rows)


def materialization_recover(repo: RepoRef, *, view: str) -> str | None:
    """Move a view left in MATERIALIZING by a dead worker back to a servable state.

    AVAILABLE_ONLINE when earlier intervals are recorded (their values are still online), else
    GENERATED, as Feast's own rollback does. Returns the new state name, None when nothing changed.
    """
    from feast.feature_view import FeatureViewState

    store = _registry_call(repo, _store, repo)
    fv = _registry_call(repo, store.registry.get_any_feature_view, view, store.project, allow_cache=False)
    if getattr(fv, "state", None) != FeatureViewState.MATERIALIZING:
        return None
    target = "AVAILABLE_ONLINE" if fv.materialization_intervals else "GENERATED"
    fv.state = FeatureViewState[target]
    _registry_call(repo, store.registry.apply_feature_view, fv, store.project, commit=True)
    return target


# --- Offline/online skew ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SkewFeature:
    """One feature's comparison: how many sampled entities disagree between online and offline."""

    feature: str
    compared: int
    mismatches: int
    missing_online: int
    examples: list[dict[str, Any]]

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class SkewReport:
    view: str
    as_of: datetime
    sampled: list[dict[str, Any]]
    features: list[SkewFeature]


def _same(a: Any, b: Any) -> bool:
    import math

    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


def _plain(value: Any) -> Any:
    import math

    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is not None and type(value).__name__ in ("NaTType", "NAType"):
        return None
    return value


def skew_check(repo: RepoRef, *, view: str, sample: int, as_of: datetime, seed: int = 0) -> SkewReport:
    """Training-serving skew of one view: for a sample of entities, online values vs the latest offline
    values as of `as_of` (Feast historical retrieval, which applies the TTL as serving does).

    Entities are sampled among those whose latest offline row in [as_of - ttl, as_of) passes the
    view's `materialize_filter` (the others are kept out of the online store on purpose).
    """
    import pandas as pd
    import pyarrow.compute as pc
    from feast.utils import _get_column_names

    store = _registry_call(repo, _store, repo)
    _registry_call(repo, store.refresh_registry)
    fvs = _materializable_views(repo, [view])
    if not fvs:
        raise InvalidInput(f"{view} is an on-demand view: nothing is materialized to compare")
    fv = fvs[0]
    entities = [store.get_entity(name) for name in fv.entities if name != "__dummy"]
    join_keys, _features, ts_col, created_col = _get_column_names(fv, entities)
    filter_text = str(fv.tags.get(MATERIALIZE_FILTER_TAG, "")).strip()
    filter_columns = materialize_filter_columns(filter_text) if filter_text else []
    window = fv.ttl if fv.ttl and fv.ttl.total_seconds() > 0 else timedelta(days=365)
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    latest = _pull_latest(
        store,
        fv.batch_source,
        join_keys=join_keys,
        columns=[c for c in filter_columns if c not in {*join_keys, ts_col, created_col}],
        ts_col=ts_col,
        created_col=created_col,
        start=as_of - window,
        end=as_of,
    )
    if filter_text and latest.num_rows:
        latest = latest.filter(parse_materialize_filter(filter_text))
    keys = latest.select(join_keys).sort_by([(k, "ascending") for k in join_keys])
    if keys.num_rows > sample:
        import random

        picked = sorted(random.Random(seed).sample(range(keys.num_rows), sample))
        keys = keys.take(pc.cast(picked, "int64"))
    rows = keys.to_pylist()
    refs = [f"{fv.name}:{f.name}" for f in fv.features]
    if not rows:
        return SkewReport(view=view, as_of=as_of, sampled=[], features=[SkewFeature(r, 0, 0, 0, []) for r in refs])
    entity_df = pd.DataFrame(rows)
    entity_df["event_timestamp"] = pd.Timestamp(as_of)
    offline = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    offline = offline.set_index(join_keys)
    online = online_preview(repo, entity_rows=rows, features=refs)
    out: list[SkewFeature] = []
    for position, ref in enumerate(refs):
        feature = ref.split(":", 1)[1]
        mismatches = missing = 0
        examples: list[dict[str, Any]] = []
        for r, row in enumerate(rows):
            key = tuple(row[k] for k in join_keys) if len(join_keys) > 1 else row[join_keys[0]]
            offline_value = _plain(offline.loc[key, feature]) if key in offline.index else None
            if isinstance(offline_value, pd.Series):  # duplicate entity rows: take the first
                offline_value = _plain(offline_value.iloc[0])
            cell = online.rows[r][position]
            online_value = None if cell.status == "NOT_FOUND" else _plain(cell.value)
            if cell.status == "NOT_FOUND" and offline_value is not None:
                missing += 1
            if not _same(online_value, offline_value):
                mismatches += 1
                if len(examples) < 5:
                    examples.append(
                        {"entity": row, "online": online_value, "offline": offline_value, "status": cell.status}
                    )
        out.append(SkewFeature(ref, len(rows), mismatches, missing, examples))
    return SkewReport(view=view, as_of=as_of, sampled=rows, features=out)


def online_write_rows(repo: RepoRef, *, view: str, rows: list[dict[str, Any]]) -> None:
    """Write rows (join keys, features, event_timestamp) straight to the online store, as a push would.

    Used to repair or, in tests, to plant a known skew.
    """
    import pandas as pd

    store = _registry_call(repo, _store, repo)
    store.write_to_online_store(view, pd.DataFrame(rows))


# --- Feature statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStats:
    """Offline statistics of one feature over a time range (numbers are None for non-numeric features)."""

    feature: str
    dtype: str
    count: int
    nulls: int
    distinct: int
    minimum: Any
    maximum: Any
    mean: float | None
    histogram: dict[str, list[Any]]  # {"edges": [...], "counts": [...]} (numeric) or {"values", "counts"}

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0


def feature_statistics(
    repo: RepoRef, *, view: str, start: datetime, end: datetime, bins: int = 20
) -> tuple[int, list[FeatureStats]]:
    """Per-feature statistics of a view's offline rows with event time in [start, end] (every row, not
    only the latest per entity). Returns (rows, stats in declared order)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    from feast.utils import _get_column_names

    store = _registry_call(repo, _store, repo)
    _registry_call(repo, store.refresh_registry)
    fvs = _materializable_views(repo, [view]) if view else []
    if not fvs:
        raise InvalidInput(f"{view} has no offline source to describe")
    fv = fvs[0]
    entities = [store.get_entity(name) for name in fv.entities if name != "__dummy"]
    join_keys, feature_cols, ts_col, created_col = _get_column_names(fv, entities)
    path = _local_parquet_path(store, fv.batch_source)
    if path is not None:
        ts_type = pads.dataset(path, format="parquet").schema.field(ts_col).type
        bounds = [start.astimezone(UTC), end.astimezone(UTC)]
        if getattr(ts_type, "tz", None) is None:
            bounds = [b.replace(tzinfo=None) for b in bounds]
        low, high = (pa.scalar(b, type=ts_type) for b in bounds)
        table = pads.dataset(path, format="parquet").to_table(
            columns=feature_cols, filter=(pads.field(ts_col) >= low) & (pads.field(ts_col) <= high)
        )
    else:
        table = (
            store._get_provider()
            .offline_store.pull_all_from_table_or_query(
                config=store.config,
                data_source=fv.batch_source,
                join_key_columns=join_keys,
                feature_name_columns=feature_cols,
                timestamp_field=ts_col,
                created_timestamp_column=created_col,
                start_date=start,
                end_date=end,
            )
            .to_arrow()
        )
    dtypes = {f.name: dtype_name(f.dtype.to_value_type().value) for f in fv.features}
    out: list[FeatureStats] = []
    for name in feature_cols:
        column = table[name]
        nulls = column.null_count
        valid = pc.drop_null(column)
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        distinct = len(pc.unique(valid)) if len(valid) else 0
        histogram: dict[str, list[Any]] = {"edges": [], "counts": []}
        if numeric and len(valid):
            values = valid.to_numpy(zero_copy_only=False).astype("float64")
            finite = values[np.isfinite(values)]
            if finite.size:
                counts, edges = np.histogram(finite, bins=min(bins, max(distinct, 1)))
                histogram = {"edges": [float(e) for e in edges], "counts": [float(c) for c in counts]}
            minimum: Any = float(finite.min()) if finite.size else None
            maximum: Any = float(finite.max()) if finite.size else None
            mean = float(finite.mean()) if finite.size else None
        else:
            top = pc.value_counts(valid).to_pylist()[:1000] if len(valid) else []
            top = sorted(top, key=lambda item: -item["counts"])[:bins]
            histogram = {"values": [str(t["values"]) for t in top], "counts": [float(t["counts"]) for t in top]}
            minimum = maximum = mean = None
        out.append(
            FeatureStats(
                feature=name,
                dtype=dtypes.get(name, str(column.type)),
                count=len(column),
                nulls=nulls,
                distinct=distinct,
                minimum=minimum,
                maximum=maximum,
                mean=mean,
                histogram=histogram,
            )
        )
    return table.num_rows, out
