"""Governance's side of Feast: current protos of a project, proposed protos built from edits, Feast's own
per-object plan, and applying exactly a set of stored protos.

Everything here works on serialized registry protos (`ObjectProto`), never on definition code: a change
request stores the protos it proposes, a reviewer approves those, and the worker applies those.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from catalog.exceptions import FeastConfigInvalid, InvalidInput, RegistryCorrupt
from catalog.feast_gateway.base import (
    DataSourceInfo,
    FeatureServiceInfo,
    FeatureViewInfo,
    ObjectInfo,
    RepoRef,
    _feast,
    _raw_config,
    registry_location,
)
from catalog.feast_gateway.protos import (
    _content,
    _data_source,
    _entity,
    _feature_service,
    _feature_view,
    _set_project,
    _strip_volatile,
    dtype_name,
    dtype_value,
)
from catalog.feast_gateway.registry import _engine, _file_bytes, _sql_error
from catalog.feast_gateway.registry_write import atomic_file_store, one_sql_transaction

logger = logging.getLogger(__name__)

# proto type -> (catalog kind, SQL table, registry proto field, view kind)
_TYPES: dict[str, tuple[str, str, str, str]] = {
    "Entity": ("entity", "entities", "entities", ""),
    "DataSource": ("data_source", "data_sources", "data_sources", ""),
    "FeatureView": ("feature_view", "feature_views", "feature_views", "batch"),
    "StreamFeatureView": ("feature_view", "stream_feature_views", "stream_feature_views", "stream"),
    "OnDemandFeatureView": ("feature_view", "on_demand_feature_views", "on_demand_feature_views", "on_demand"),
    "FeatureService": ("feature_service", "feature_services", "feature_services", ""),
}
_NAME_COLUMNS = {
    "entities": "entity_name",
    "data_sources": "data_source_name",
    "feature_views": "feature_view_name",
    "stream_feature_views": "feature_view_name",
    "on_demand_feature_views": "feature_view_name",
    "feature_services": "feature_service_name",
}
_PROTO_COLUMNS = {
    "entities": "entity_proto",
    "data_sources": "data_source_proto",
    "feature_views": "feature_view_proto",
    "stream_feature_views": "feature_view_proto",
    "on_demand_feature_views": "feature_view_proto",
    "feature_services": "feature_service_proto",
}

Key = tuple[str, str]  # (catalog kind, name)


@dataclass(frozen=True)
class ObjectProto:
    """One registry object as a serialized Feast proto (what a change request stores and applies)."""

    kind: str  # entity | data_source | feature_view | feature_service
    proto_type: str  # Entity | DataSource | FeatureView | StreamFeatureView | OnDemandFeatureView | FeatureService
    name: str
    proto: bytes

    @property
    def key(self) -> Key:
        return (self.kind, self.name)

    def message(self) -> Any:
        """The parsed proto message."""
        if self.proto_type not in _TYPES:
            raise InvalidInput(f"unknown object type {self.proto_type!r}")
        message = getattr(_feast(), self.proto_type)()
        try:
            message.ParseFromString(self.proto)
        except _feast().DecodeError as exc:
            raise RegistryCorrupt(f"the stored proto of {self.kind} {self.name!r} is unreadable: {exc}") from exc
        return message


def object_proto(message: Any, project: str | None = None) -> ObjectProto:
    """Wrap a proto message (optionally moved into `project`)."""
    proto_type = message.DESCRIPTOR.name
    if proto_type not in _TYPES:
        raise InvalidInput(f"unsupported object type {proto_type}")
    if project is not None:
        _set_project(message, project)
    name = message.name if proto_type == "DataSource" else message.spec.name
    return ObjectProto(kind=_TYPES[proto_type][0], proto_type=proto_type, name=name, proto=message.SerializeToString())


def object_info(obj: ObjectProto, project: str) -> ObjectInfo:
    """Plain data for a proto (the same shape the catalog sync reads from the registry)."""
    message = obj.message()
    if obj.proto_type == "Entity":
        return _entity(message)
    if obj.proto_type == "DataSource":
        return _data_source(message, project)
    if obj.proto_type == "FeatureService":
        return _feature_service(message, project)
    return _feature_view(message, _TYPES[obj.proto_type][3], project)


def content_hash(obj: ObjectProto) -> str:
    """The digest of what a user defined (volatile metadata cleared): equal to the catalog's content_hash."""
    message = obj.message()
    return _content(message if obj.proto_type == "DataSource" else message.spec)[1]


def spec_json(obj: ObjectProto) -> dict[str, Any]:
    """The object's user-defined content as registry JSON (snake_case), volatile metadata cleared."""
    message = obj.message()
    return _content(message if obj.proto_type == "DataSource" else message.spec)[0].json()


# --- Reading a project's current protos ----------------------------------------------------------------


def project_protos(repo: RepoRef, project: str, keys: Iterable[Key] | None = None) -> dict[Key, ObjectProto]:
    """The project's objects as they are in the live registry now (all, or only `keys`)."""
    wanted = None if keys is None else set(keys)
    location = registry_location(repo)
    out: dict[Key, ObjectProto] = {}
    if location.kind == "sql":
        from sqlalchemy import bindparam, inspect, text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with _engine(location.path).connect() as conn:
                present = set(inspect(conn).get_table_names())
                for proto_type, (kind, table, _, _) in _TYPES.items():
                    if table not in present:
                        continue
                    names = None if wanted is None else sorted(n for k, n in wanted if k == kind)
                    if names == []:
                        continue
                    sql = f"SELECT {_NAME_COLUMNS[table]}, {_PROTO_COLUMNS[table]} FROM {table} WHERE project_id = :p"
                    params: dict[str, Any] = {"p": project}
                    statement = text(sql)
                    if names is not None:
                        statement = text(sql + f" AND {_NAME_COLUMNS[table]} IN :names").bindparams(
                            bindparam("names", expanding=True)
                        )
                        params["names"] = names
                    for name, blob in conn.execute(statement, params):
                        if proto_type == "Entity" and name == "__dummy":
                            continue
                        out[(kind, name)] = ObjectProto(kind, proto_type, name, bytes(blob))
        except SQLAlchemyError as exc:
            raise _sql_error(location, exc) from exc
        return out
    registry = _feast().Registry()
    try:
        registry.ParseFromString(_file_bytes(location, repo))
    except _feast().DecodeError as exc:
        raise RegistryCorrupt(f"Feast registry file {location.path} is corrupt: {exc}") from exc
    for proto_type, (kind, _, field_name, _) in _TYPES.items():
        for message in getattr(registry, field_name):
            belongs = message.project if proto_type == "DataSource" else message.spec.project
            name = message.name if proto_type == "DataSource" else message.spec.name
            if belongs != project or (proto_type == "Entity" and name == "__dummy"):
                continue
            if wanted is None or (kind, name) in wanted:
                out[(kind, name)] = ObjectProto(kind, proto_type, name, message.SerializeToString())
    return out


def scope_fingerprint(objects: Mapping[Key, ObjectProto | None], keys: Iterable[Key]) -> str:
    """A digest of the content of `keys` in `objects` (absent objects count): the plan's base state.

    Content hashes ignore what materialization rewrites, so a materialization between plan and apply
    does not make a request stale; any definition change to an object in scope does.
    """
    digest = hashlib.sha256()
    for key in sorted(set(keys)):
        obj = objects.get(key)
        digest.update(f"{key[0]}\x1f{key[1]}\x1f{content_hash(obj) if obj else 'absent'}\x1e".encode())
    return digest.hexdigest()


# --- Feast's own plan, per object ---------------------------------------------------------------------


def _feast_object(obj: ObjectProto, *, strip: bool = True) -> Any:
    """The Feast SDK object for a proto; `strip` clears volatile metadata (for comparing, never for applying:
    it drops a UDF's pickled body)."""
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView, StreamFeatureView
    from feast.data_source import DataSource

    message = obj.message()
    if strip:
        _strip_volatile(message)
    cls: Any = {
        "Entity": Entity,
        "DataSource": DataSource,
        "FeatureView": FeatureView,
        "StreamFeatureView": StreamFeatureView,
        "OnDemandFeatureView": OnDemandFeatureView,
        "FeatureService": FeatureService,
    }[obj.proto_type]
    return cls.from_proto(message)


def _plain_value(value: Any) -> Any:
    if hasattr(value, "DESCRIPTOR"):
        return _feast().json_format.MessageToDict(value, preserving_proto_field_name=True)
    if hasattr(value, "items"):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__.startswith("Repeated"):
        return [_plain_value(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def feast_plan(current: ObjectProto | None, proposed: ObjectProto | None) -> dict[str, Any]:
    """Feast's own registry diff for one object, as `feast plan` computes it (feast/diff/registry_diff.py:
    one entry per top-level spec property that differs, `project` ignored, a UDF compared field by field
    without its pickled body), computed on the protos with volatile metadata cleared.

    It deliberately never builds Feast objects: `from_proto` of an on-demand or stream view unpickles the
    uploaded UDF, i.e. runs code a reviewer has not approved yet. Clearing volatile metadata keeps a past
    materialization from showing up as "batch_source updated".
    """
    if current is None and proposed is None:
        raise ValueError("nothing to compare")
    if current is None or proposed is None:
        return {"transition": "CREATE" if current is None else "DELETE", "properties": []}
    old, new = current.message(), proposed.message()
    _strip_volatile(old)
    _strip_volatile(new)
    old_spec = old if current.proto_type == "DataSource" else old.spec
    new_spec = new if proposed.proto_type == "DataSource" else new.spec
    properties: list[dict[str, Any]] = []
    for field in old_spec.DESCRIPTOR.fields:
        if field.name in {"project", "meta"}:
            continue
        before, after = getattr(old_spec, field.name), getattr(new_spec, field.name)
        if field.name == "feature_transformation" and before != after:
            old_udf = before.user_defined_function
            new_udf = after.user_defined_function
            for udf_field in old_udf.DESCRIPTOR.fields:
                if udf_field.name != "body" and getattr(old_udf, udf_field.name) != getattr(new_udf, udf_field.name):
                    properties.append(
                        {
                            "property": f"feature_transformation.{udf_field.name}",
                            "before": _plain_value(getattr(old_udf, udf_field.name)),
                            "after": _plain_value(getattr(new_udf, udf_field.name)),
                        }
                    )
        elif _stable(before) != _stable(after):
            properties.append({"property": field.name, "before": _plain_value(before), "after": _plain_value(after)})
    return {"transition": "UPDATE" if properties else "UNCHANGED", "properties": properties}


def _stable(value: Any) -> Any:
    """A value with volatile metadata cleared, for comparing (messages are copied, never modified)."""
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "CopyFrom"):
        clean = type(value)()
        clean.CopyFrom(value)
        _strip_volatile(clean)
        return clean.SerializeToString(deterministic=True)
    if type(value).__name__.startswith("Repeated"):
        return [_stable(v) for v in value]
    return value


# --- Edits: proposed protos built from the current ones, no code involved ---------------------------------


def _view_spec(message: Any) -> Any:
    return message.spec


def _require(objects: Mapping[Key, ObjectProto], kind: str, name: str) -> ObjectProto:
    obj = objects.get((kind, name))
    if obj is None:
        raise InvalidInput(f"{kind.replace('_', ' ')} {name!r} does not exist in the project", {"name": [name]})
    return obj


def _dtype(name: Any) -> int:
    try:
        return dtype_value(str(name))
    except ValueError:
        known = "Int32, Int64, Float32, Float64, String, Bool, Bytes, UnixTimestamp, Array(...)"
        raise InvalidInput(f"unknown dtype {name!r} (known: {known})", {"dtype": [f"unknown dtype {name!r}"]}) from None


def _text(edit: Mapping[str, Any], key: str, *, limit: int = 255, required: bool = True) -> str:
    value = edit.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"'{key}' is required and must be text", {key: ["required"]})
    if len(value) > limit:
        raise InvalidInput(f"'{key}' is longer than {limit} characters", {key: ["too long"]})
    return value.strip() if limit <= 255 else value


EDIT_OPS = (
    "set_metadata",
    "add_field",
    "remove_field",
    "change_dtype",
    "set_ttl",
    "deprecate",
    "remove_from_service",
    "delete",
)


def apply_edits(
    current: Mapping[Key, ObjectProto], edits: Sequence[Mapping[str, Any]]
) -> tuple[dict[Key, ObjectProto], set[Key]]:
    """Apply form/API edits to the project's current protos.

    Returns (upserts by key, deletions). An edit that names an unknown object, field or dtype raises
    InvalidInput and nothing is built. Removing a field or changing its dtype also updates the feature
    services that project it, so the services' vectors in the plan show what the model will see.
    """
    if not isinstance(edits, list | tuple) or not edits:
        raise InvalidInput("a change needs at least one edit", {"edits": ["empty"]})
    if len(edits) > 500:
        raise InvalidInput("at most 500 edits per change request", {"edits": ["too many"]})
    working: dict[Key, Any] = {}
    deleted: set[Key] = set()

    def get(kind: str, name: str) -> Any:
        key = (kind, name)
        if key in deleted:
            raise InvalidInput(f"{kind.replace('_', ' ')} {name!r} is deleted earlier in this change")
        if key not in working:
            working[key] = _require(current, kind, name).message()
        return working[key]

    def services_using(view: str, feature: str) -> list[Key]:
        out = []
        for key, obj in current.items():
            if obj.proto_type != "FeatureService" or key in deleted:
                continue
            message = working.get(key) or obj.message()
            if any(
                p.feature_view_name == view and any(c.name == feature for c in p.feature_columns)
                for p in message.spec.features
            ):
                out.append(key)
        return out

    for position, edit in enumerate(edits):
        if not isinstance(edit, Mapping):
            raise InvalidInput(f"edit {position + 1} is not an object")
        op = edit.get("op")
        if op not in EDIT_OPS:
            raise InvalidInput(f"edit {position + 1}: unknown op {op!r} (one of {', '.join(EDIT_OPS)})")
        try:
            _apply_edit(op, edit, get, services_using, working, deleted, current)
        except InvalidInput as exc:
            raise InvalidInput(f"edit {position + 1} ({op}): {exc}", exc.details) from None
    upserts = {key: object_proto(message) for key, message in working.items() if key not in deleted}
    return upserts, deleted


def _apply_edit(
    op: str,
    edit: Mapping[str, Any],
    get: Any,
    services_using: Any,
    working: dict[Key, Any],
    deleted: set[Key],
    current: Mapping[Key, ObjectProto],
) -> None:
    if op == "set_metadata":
        kind = _text(edit, "kind")
        if kind not in {"entity", "data_source", "feature_view", "feature_service"}:
            raise InvalidInput(f"unknown kind {kind!r}", {"kind": ["unknown"]})
        message = get(kind, _text(edit, "name"))
        target = message if kind == "data_source" else message.spec
        if "description" in edit:
            target.description = _text(edit, "description", limit=10000, required=False)
        if "owner" in edit:
            target.owner = _text(edit, "owner", required=False)
        if "tags" in edit:
            tags = edit["tags"]
            if not isinstance(tags, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) and k and len(k) <= 255 and len(v) <= 1000
                for k, v in tags.items()
            ):
                raise InvalidInput("'tags' must map text keys to text values", {"tags": ["invalid"]})
            target.tags.clear()
            target.tags.update(dict(tags))
        if not {"description", "owner", "tags"} & set(edit):
            raise InvalidInput("set_metadata needs description, owner or tags")
        return
    if op == "deprecate":
        kind = _text(edit, "kind")
        if kind not in {"feature_view", "feature_service"}:
            raise InvalidInput("only feature views and services can be deprecated", {"kind": ["invalid"]})
        message = get(kind, _text(edit, "name"))
        message.spec.tags["deprecated"] = "true"
        reason = _text(edit, "reason", limit=1000, required=False)
        if reason:
            message.spec.tags["deprecation_reason"] = reason
        return
    if op == "delete":
        kind = _text(edit, "kind")
        name = _text(edit, "name")
        _require(current, kind, name)
        working.pop((kind, name), None)
        deleted.add((kind, name))
        return
    if op == "remove_from_service":
        message = get("feature_service", _text(edit, "service"))
        view, feature = _text(edit, "view"), _text(edit, "feature")
        _remove_column(message, view, feature, strict=True)
        return
    view_name = _text(edit, "view")
    message = get("feature_view", view_name)
    if message.DESCRIPTOR.name == "OnDemandFeatureView" and op != "set_ttl":
        raise InvalidInput("on-demand views compute their fields in code: change them with an upload")
    spec = _view_spec(message)
    if op == "set_ttl":
        if message.DESCRIPTOR.name == "OnDemandFeatureView":
            raise InvalidInput("on-demand views have no TTL")
        ttl = edit.get("ttl_seconds")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0 or ttl > 10 * 365 * 86400:
            raise InvalidInput(
                "'ttl_seconds' must be a whole number of seconds, 0 to 10 years", {"ttl_seconds": ["invalid"]}
            )
        spec.ttl.FromTimedelta(timedelta(seconds=ttl))
        return
    field = _text(edit, "field")
    names = [f.name for f in spec.features]
    if op == "add_field":
        if field in names or field in {c.name for c in spec.entity_columns}:
            raise InvalidInput(f"view {view_name!r} already has a field {field!r}", {"field": ["exists"]})
        if not field.isidentifier():
            raise InvalidInput(f"{field!r} is not a valid field name (letters, digits, _)", {"field": ["invalid"]})
        added = spec.features.add()
        added.name = field
        added.value_type = _dtype(edit.get("dtype"))
        added.description = _text(edit, "description", limit=10000, required=False)
        return
    if field not in names:
        raise InvalidInput(f"view {view_name!r} has no field {field!r}", {"field": ["unknown"]})
    if op == "remove_field":
        if len(names) == 1:
            raise InvalidInput("a feature view needs at least one field: deprecate or delete the view instead")
        index = names.index(field)
        del spec.features[index]
        for key in services_using(view_name, field):
            _remove_column(get(*key), view_name, field, strict=False)
        return
    if op == "change_dtype":
        value = _dtype(edit.get("dtype"))
        target = spec.features[names.index(field)]
        if target.value_type == value:
            raise InvalidInput(f"{view_name}.{field} is already {dtype_name(value)}", {"dtype": ["unchanged"]})
        target.value_type = value
        for key in services_using(view_name, field):
            for projection in get(*key).spec.features:
                if projection.feature_view_name == view_name:
                    for column in projection.feature_columns:
                        if column.name == field:
                            column.value_type = value
        return
    raise InvalidInput(f"unknown op {op!r}")  # pragma: no cover - EDIT_OPS is checked first


def _remove_column(service: Any, view: str, feature: str, *, strict: bool) -> None:
    for projection in list(service.spec.features):
        if projection.feature_view_name != view and projection.feature_view_name_alias != view:
            continue
        for i, column in enumerate(projection.feature_columns):
            if column.name == feature:
                del projection.feature_columns[i]
                if not projection.feature_columns:
                    service.spec.features.remove(projection)
                if not service.spec.features:
                    raise InvalidInput(
                        f"service {service.spec.name!r} would have no features left: delete or deprecate it instead"
                    )
                return
    if strict:
        raise InvalidInput(f"service {service.spec.name!r} does not use {view}:{feature}", {"feature": ["unknown"]})


# --- References --------------------------------------------------------------------------------------


def references(obj: ObjectProto) -> list[tuple[Key, list[str]]]:
    """What an object needs to exist: [((kind, name), [features it reads])]."""
    info = object_info(obj, "")
    out: list[tuple[Key, list[str]]] = []
    if isinstance(info, FeatureViewInfo) and info.kind == "on_demand":
        for source in obj.message().spec.sources.values():
            which = source.WhichOneof("source")
            if which == "feature_view":
                spec = source.feature_view.spec
                out.append((("feature_view", spec.name), [f.name for f in spec.features]))
            elif which == "feature_view_projection":
                projection = source.feature_view_projection
                out.append(
                    (("feature_view", projection.feature_view_name), [c.name for c in projection.feature_columns])
                )
    elif isinstance(info, FeatureViewInfo):
        out += [(("entity", e), []) for e in info.entities]
        out += [(("feature_view", v), []) for v in info.source_views]
    elif isinstance(info, FeatureServiceInfo):
        by_view: dict[str, list[str]] = {}
        for entry in info.vector:
            by_view.setdefault(entry.feature_view, []).append(entry.feature)
        out += [(("feature_view", view), features) for view, features in by_view.items()]
    elif isinstance(info, DataSourceInfo) and info.batch_source:
        out.append((("data_source", info.batch_source), []))
    return out


def view_field_names(obj: ObjectProto) -> set[str]:
    """A view's feature names plus its entity columns (what a service projection may read)."""
    info = object_info(obj, "")
    if not isinstance(info, FeatureViewInfo):
        return set()
    return {f.name for f in info.features} | {c.name for c in info.entity_columns}


# --- Apply ---------------------------------------------------------------------------------------------


def _store_for(repo: RepoRef, project: str, *, uncached_sql: bool = False) -> Any:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    raw = _raw_config(repo)
    if str(raw["project"]) != project:
        raise FeastConfigInvalid(f"{repo.yaml_path} governs project {raw['project']!r}, not {project!r}")
    registry = raw.get("registry")
    if uncached_sql and isinstance(registry, dict) and registry.get("registry_type") == "sql":
        # No registry cache while applying: "sync" re-reads the whole registry after every object written
        # (and once more at the end), and "thread" would read it from a timer thread, over the one
        # connection the apply's transaction holds. The worker reads back what it wrote itself.
        raw["registry"] = {**registry, "cache_mode": "none"}
    try:
        config = RepoConfig(**raw)
    except Exception as exc:  # pydantic's ValidationError and Feast's config errors
        raise FeastConfigInvalid(f"{repo.yaml_path} is not a valid Feast configuration: {exc}") from exc
    config.repo_path = Path(repo.path)
    return FeatureStore(config=config, repo_path=str(repo.path))


def _entity_names(repo: RepoRef, project: str) -> list[str]:
    location = registry_location(repo)
    if location.kind != "sql":
        return [n for k, n in project_protos(repo, project) if k == "entity"]
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with _engine(location.path).connect() as conn:
            rows = conn.execute(text("SELECT entity_name FROM entities WHERE project_id = :p"), {"p": project})
            return [str(r[0]) for r in rows if r[0] != "__dummy"]
    except SQLAlchemyError as exc:
        raise _sql_error(location, exc) from exc


def _with_registry_inferences(repo: RepoRef, project: str, objects: list[ObjectProto]) -> list[ObjectProto]:
    """Views with code keep what Feast inferred for them last time (entity columns) when the upload omits it."""
    if not objects:
        return []
    current = project_protos(repo, project, [o.key for o in objects])
    out = []
    for obj in objects:
        registered = current.get(obj.key)
        message = obj.message()
        if registered is not None and registered.proto_type == obj.proto_type and not message.spec.entity_columns:
            message.spec.entity_columns.extend(registered.message().spec.entity_columns)
            obj = ObjectProto(obj.kind, obj.proto_type, obj.name, message.SerializeToString())
        out.append(obj)
    return out


def infer_objects(repo: RepoRef, project: str, objects: Sequence[ObjectProto]) -> list[ObjectProto]:
    """Run Feast's apply-time inference (`FeatureStore._make_inferences`: entity columns, timestamp fields,
    on-demand schemas) on parsed definitions, so the stored protos are what `apply` would write.

    Parsed repos lack what Feast infers at apply time; without this every uploaded view would differ from
    the registry by its entity columns. Entities the registry already holds count, as they do for apply.
    """
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView, StreamFeatureView
    from feast.data_source import DataSource

    store = _store_for(repo, project)
    names = _entity_names(repo, project)
    registry_entities = [
        _feast_object(o, strip=False) for o in project_protos(repo, project, [("entity", n) for n in names]).values()
    ]
    store._list_entities = lambda *args, **kwargs: registry_entities  # the registry's entities, read once
    # On-demand and stream views carry a pickled UDF: building them would run unapproved code in the
    # portal. They keep the protos the sandbox produced; Feast infers their schema at apply time, and the
    # worker records any difference it makes ("normalised_by_feast").
    code_free = {"Entity", "DataSource", "FeatureView", "FeatureService"}
    built = [(o, _feast_object_for_apply(o, project)) for o in objects if o.proto_type in code_free]
    passed = _with_registry_inferences(repo, project, [o for o in objects if o.proto_type not in code_free])
    by_type: dict[type, list[Any]] = {}
    for _, item in built:
        for cls in (StreamFeatureView, OnDemandFeatureView, FeatureView, Entity, FeatureService, DataSource):
            if isinstance(item, cls):
                by_type.setdefault(cls, []).append(item)
                break
    try:
        store._make_inferences(
            by_type.get(DataSource, []),
            by_type.get(Entity, []),
            by_type.get(FeatureView, []),
            by_type.get(OnDemandFeatureView, []),
            by_type.get(StreamFeatureView, []),
            by_type.get(FeatureService, []),
        )
    except Exception as exc:  # Feast raises plain ValueError/RegistryInferenceFailure on bad definitions
        raise InvalidInput(f"Feast could not complete the definitions: {type(exc).__name__}: {exc}") from exc
    out = list(passed)
    for original, item in built:
        message = item.to_proto()
        _set_project(message, project)
        out.append(ObjectProto(original.kind, original.proto_type, original.name, message.SerializeToString()))
    return out


def apply_protos(repo: RepoRef, project: str, upserts: Sequence[ObjectProto], deletes: Sequence[ObjectProto]) -> None:
    """Apply exactly these objects with Feast's SDK (`FeatureStore.apply`), deleting `deletes` explicitly,
    all or nothing: afterwards the registry holds either all of it or none of it.

    Objects not named are never touched (partial apply). On a SQL registry every row Feast writes (objects,
    version history, project row, `feast_metadata`) goes into one database transaction, committed after
    Feast's apply (including its online-store infrastructure update) has returned; a local file registry is
    written to a new file and renamed over the old one (see `registry_write`). Online-store infrastructure is
    not transactional: a failure after it ran leaves created tables (harmless) or deleted online rows of a
    view whose deletion was rolled back (re-materialize it).
    """
    from feast.infra.registry.sql import SqlRegistry

    store = _store_for(repo, project, uncached_sql=True)
    registry: Any = store.registry
    objects = [_feast_object_for_apply(o, project) for o in upserts]
    to_delete = [_feast_object_for_apply(o, project) for o in deletes]
    if isinstance(registry, SqlRegistry):
        try:
            with one_sql_transaction(registry):
                store.apply(objects, objects_to_delete=to_delete, partial=not to_delete)
        finally:  # this store is used once: do not leave its connection pool behind in a long-lived worker
            registry.write_engine.dispose()
            registry.read_engine.dispose()
        return
    if getattr(registry, "cache_mode", None) == "sync":
        registry.cache_mode = "none"  # a file registry is read once; the apply writes it once, at the end
    atomic_file_store(registry)
    store.apply(objects, objects_to_delete=to_delete, partial=not to_delete)


def _feast_object_for_apply(obj: ObjectProto, project: str) -> Any:
    message = obj.message()
    _set_project(message, project)
    return _feast_object(ObjectProto(obj.kind, obj.proto_type, obj.name, message.SerializeToString()), strip=False)
