"""Plain data the gateway returns, Feast's lazy import, and the governed repos' configuration."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import yaml
from django.conf import settings

if TYPE_CHECKING:
    from google.protobuf.message import Message

from catalog.exceptions import (
    FeastConfigInvalid,
)

logger = logging.getLogger(__name__)


@cache
def feast_api() -> SimpleNamespace:
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
    from feast.value_type import ValueType  # Feast's own enum: a superset of the proto's (PDF_BYTES...)
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
    vector_search: dict[str, Any] = field(default_factory=dict)  # {"index", "length", "search_metric"} or {}


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
            self._json = message_json(self._message) if self._message is not None else {}
        return self._json


def message_json(message: Message) -> dict[str, Any]:
    """A proto message as registry JSON (snake_case field names, as `feast registry-dump` shows them)."""
    return dict(feast_api().json_format.MessageToDict(message, preserving_proto_field_name=True))


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
    org: str = ""  # Feast >= 0.67: the organisational unit owning the view (e.g. "ads")


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


@dataclass(frozen=True)
class RegistryRecordInfo(ObjectInfo):
    """A saved dataset, validation reference or permission: read and shown, not governed by change requests."""

    kind: str  # saved_dataset | validation_reference | permission
    subkind: str  # a saved dataset's storage kind (file, bigquery, ...), a permission's policy kind (role, ...)
    location: str  # a saved dataset's storage (path or table); "" otherwise
    upstream: list[tuple[str, str, str]]  # (edge kind, upstream kind, upstream name): its lineage


@dataclass(frozen=True)
class UnreadableObject:
    """An object the registry holds but the portal cannot read (an undecodable proto, a shape it cannot map)."""

    project: str
    kind: str  # entity | data_source | feature_view | feature_service
    name: str
    error: str  # what failed, with the decoder's or Feast's own message

    def describe(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.project}/{self.name}: {self.error}"


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
    records: list[RegistryRecordInfo] = field(default_factory=list)  # saved datasets, validation refs, permissions
    unreadable: list[UnreadableObject] = field(default_factory=list)  # held by the registry, not readable here


# --- Repos and their configuration --------------------------------------------------------------


def governed_repos() -> list[RepoRef]:
    """The repos named by FEAST_REPO_PATH, each with the YAML this profile uses."""
    return [repo_ref(path) for path in settings.FEAST_REPO_PATHS]


def project_repos() -> dict[str, RepoRef]:
    """Every governed repo by the project its feature_store YAML names (the first repo naming it wins)."""
    out: dict[str, RepoRef] = {}
    for repo in governed_repos():
        out.setdefault(registry_location(repo).project, repo)
    return out


def project_repo(project: str) -> RepoRef:
    """The governed repo of `project`: the one lookup every service uses (ObjectNotFound: no governed
    feature_store YAML names it, so the project is read-only here)."""
    from catalog.exceptions import ObjectNotFound

    repo = project_repos().get(project)
    if repo is None:
        raise ObjectNotFound(f"no governed Feast repo holds project {project}")
    return repo


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


def raw_config(repo: RepoRef) -> dict[str, Any]:
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
    raw = raw_config(repo)
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
