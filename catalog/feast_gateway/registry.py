"""Reading a registry (file or SQL) from its YAML alone: fingerprints, snapshots, registry-dump."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog.exceptions import (
    RegistryCorrupt,
    RegistryUnavailable,
)
from catalog.feast_gateway.base import (
    FeatureViewVersionInfo,
    RegistryLocation,
    RegistrySnapshot,
    RepoRef,
    UnreadableObject,
    feast_api,
    registry_location,
    run_cli,
)
from catalog.feast_gateway.protos import (
    _set_project,
    _snapshot_from_proto,
    _version_from_record,
)

logger = logging.getLogger(__name__)

# --- Reading a registry -------------------------------------------------------------------------

_SQL_TABLES: list[tuple[str, str, str, str]] = [
    # (table, name column, proto column, the catalog kind of its objects), in dependency order
    ("projects", "project_name", "project_proto", "project"),
    ("entities", "entity_name", "entity_proto", "entity"),
    ("data_sources", "data_source_name", "data_source_proto", "data_source"),
    ("feature_views", "feature_view_name", "feature_view_proto", "feature_view"),
    ("stream_feature_views", "feature_view_name", "feature_view_proto", "feature_view"),
    ("on_demand_feature_views", "feature_view_name", "feature_view_proto", "feature_view"),
    ("label_views", "feature_view_name", "feature_view_proto", "feature_view"),
    ("feature_services", "feature_service_name", "feature_service_proto", "feature_service"),
    ("saved_datasets", "saved_dataset_name", "saved_dataset_proto", "saved_dataset"),
    ("validation_references", "validation_reference_name", "validation_reference_proto", "validation_reference"),
    ("permissions", "permission_name", "permission_proto", "permission"),
]

_engines: dict[str, Any] = {}
_engines_lock = threading.Lock()


def sql_engine(url: str) -> Any:
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


def sql_registry_error(location: RegistryLocation, exc: Exception) -> RegistryUnavailable:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RegistryUnavailable(f"Feast SQL registry at {location.display} is unreachable: {first_line}")


def _read_sql_rows(location: RegistryLocation) -> dict[str, list[tuple[Any, ...]]]:
    """All proto rows, per table, as (project, name, proto bytes); read-only."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = sql_engine(location.path)
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            if "projects" not in present:
                raise RegistryUnavailable(
                    f"Feast SQL registry at {location.display} has no tables yet: run `feast apply` first"
                )
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for table, name_col, proto_col, _kind in _SQL_TABLES:
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
        raise sql_registry_error(location, exc) from exc


def _sql_fingerprint(location: RegistryLocation) -> str:
    """A digest that changes whenever any registry row changes. On PostgreSQL only md5s cross the wire."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    if not location.path.startswith("postgresql"):
        return _digest_rows(_read_sql_rows(location))
    digest = hashlib.sha256()
    try:
        with sql_engine(location.path).connect() as conn:
            present = set(inspect(conn).get_table_names())
            if "projects" not in present:
                raise RegistryUnavailable(
                    f"Feast SQL registry at {location.display} has no tables yet: run `feast apply` first"
                )
            parts = [
                f"SELECT '{table}', project_id, {name_col}, md5({proto_col}) FROM {table}"
                for table, name_col, proto_col, _kind in _SQL_TABLES
                if table in present
            ]
            query = " UNION ALL ".join(parts) + " ORDER BY 1, 2, 3"
            for row in conn.execute(text(query)):
                digest.update("\x1f".join(str(v) for v in row).encode())
                digest.update(b"\x1e")
    except SQLAlchemyError as exc:
        raise sql_registry_error(location, exc) from exc
    return digest.hexdigest()


def _digest_rows(rows: Mapping[str, Iterable[tuple[Any, ...]]]) -> str:
    digest = hashlib.sha256()
    for table, _, _, _ in _SQL_TABLES:
        for project, name, blob in rows.get(table, []):
            digest.update(f"{table}\x1f{project}\x1f{name}\x1f".encode())
            digest.update(hashlib.md5(blob, usedforsecurity=False).hexdigest().encode())
            digest.update(b"\x1e")
    return digest.hexdigest()


def registry_file_bytes(location: RegistryLocation, repo: RepoRef) -> bytes:
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
    return "file:" + hashlib.sha256(registry_file_bytes(location, repo)).hexdigest()


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
        proto = feast_api().Registry()
        unreadable: list[UnreadableObject] = []
        for table, _name_col, _proto_col, kind in _SQL_TABLES:
            container = getattr(proto, table)
            for project, name, blob in rows[table]:
                message = container.add()
                try:
                    message.ParseFromString(blob)
                except feast_api().DecodeError as exc:
                    del container[-1]
                    if table == "projects":
                        raise RegistryCorrupt(
                            f"Feast SQL registry at {location.display} holds an unreadable project {name!r}: {exc}"
                        ) from exc
                    unreadable.append(UnreadableObject(project, kind, name, f"its proto does not decode ({exc})"))
                    continue
                if table != "projects":
                    _set_project(message, project)
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
        return _snapshot_from_proto(proto, location, fingerprint, versions, unreadable)
    blob = registry_file_bytes(location, repo)
    proto = feast_api().Registry()
    try:
        proto.ParseFromString(blob)
    except feast_api().DecodeError as exc:
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
