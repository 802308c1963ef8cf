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

from catalog.exceptions import ApplyNotAsPlanned, FeastConfigInvalid, InvalidInput, RegistryCorrupt
from catalog.feast_gateway.base import (
    DataSourceInfo,
    FeatureServiceInfo,
    FeatureViewInfo,
    ObjectInfo,
    RepoRef,
    feast_api,
    raw_config,
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
    nested_messages,
    own_content_hash,
    udf_messages,
)
from catalog.feast_gateway.registry import registry_file_bytes, sql_engine, sql_registry_error
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
        message = getattr(feast_api(), self.proto_type)()
        try:
            message.ParseFromString(self.proto)
        except feast_api().DecodeError as exc:
            raise RegistryCorrupt(
                f"the registry's stored proto of {self.kind.replace('_', ' ')} {self.name!r} does not decode ({exc}): "
                "a plan that reads or replaces it cannot be computed until it is repaired in the registry"
            ) from exc
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


def own_hash(obj: ObjectProto) -> str:
    """The digest of the object's own content, embedded copies of other objects by name only."""
    message = obj.message()
    return own_content_hash(message if obj.proto_type == "DataSource" else message.spec)


def spec_json(obj: ObjectProto) -> dict[str, Any]:
    """The object's user-defined content as registry JSON (snake_case), volatile metadata cleared."""
    message = obj.message()
    return _content(message if obj.proto_type == "DataSource" else message.spec)[0].json()


# --- Reading a project's current protos ----------------------------------------------------------------


def project_protos(repo: RepoRef, project: str, keys: Iterable[Key] | None = None) -> dict[Key, ObjectProto]:
    """The project's objects as they are in the live registry now (all, or only `keys`)."""
    wanted = None if keys is None else set(keys)
    location = registry_location(repo)
    if location.kind == "sql":
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with sql_engine(location.path).connect() as conn:
                return _sql_project_protos(conn, project, wanted)
        except SQLAlchemyError as exc:
            raise sql_registry_error(location, exc) from exc
    return _project_protos_in(
        registry_file_bytes(location, repo), project, wanted, where=f"Feast registry file {location.path}"
    )


def _sql_project_protos(conn: Any, project: str, wanted: set[Key] | None) -> dict[Key, ObjectProto]:
    """A project's objects in a SQL registry, over an open connection."""
    from sqlalchemy import bindparam, inspect, text

    out: dict[Key, ObjectProto] = {}
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
    return out


def _project_protos_in(
    data: bytes, project: str, wanted: set[Key] | None, *, where: str = "the registry"
) -> dict[Key, ObjectProto]:
    """A project's objects in a serialized file registry."""
    registry = feast_api().Registry()
    try:
        registry.ParseFromString(data)
    except feast_api().DecodeError as exc:
        raise RegistryCorrupt(f"{where} is corrupt: {exc}") from exc
    out: dict[Key, ObjectProto] = {}
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
        return feast_api().json_format.MessageToDict(value, preserving_proto_field_name=True)
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
    """Apply edits, already checked against their typed schema (catalog/edits.py), to the project's current
    protos.

    Returns (upserts by key, deletions). An edit that names an object, field or service the registry does
    not have raises InvalidInput and nothing is built. Removing a field or changing its dtype also updates the feature
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
        message = get(kind, _text(edit, "name"))
        target = message if kind == "data_source" else message.spec
        if "description" in edit:
            target.description = _text(edit, "description", limit=10000, required=False)
        if "owner" in edit:
            target.owner = _text(edit, "owner", required=False)
        if "tags" in edit:
            target.tags.clear()
            target.tags.update(dict(edit["tags"]))
        return
    if op == "deprecate":
        kind = _text(edit, "kind")
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
        spec.ttl.FromTimedelta(timedelta(seconds=int(edit["ttl_seconds"])))
        return
    field = _text(edit, "field")
    names = [f.name for f in spec.features]
    if op == "add_field":
        if field in names or field in {c.name for c in spec.entity_columns}:
            raise InvalidInput(f"view {view_name!r} already has a field {field!r}", {"field": ["exists"]})
        added = spec.features.add()
        added.name = field
        added.value_type = dtype_value(str(edit["dtype"]))
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
        value = dtype_value(str(edit["dtype"]))
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


# --- Source schemas --------------------------------------------------------------------------------------


def source_columns(repo: RepoRef, project: str, source: Any) -> dict[str, str]:
    """A data source's columns as Feast reads them (`get_table_column_names_and_types`, the call its schema
    inference makes), renamed by the source's field mapping, with Feast's type names ("Int64", "String"; "?"
    for a type Feast cannot map). Raises SourceUnreadable when the source cannot be read from here."""
    from feast.data_source import DataSource

    from catalog.exceptions import SourceUnreadable

    store = _store_for(repo, project)
    try:
        data_source = DataSource.from_proto(source)
        raw = list(data_source.get_table_column_names_and_types(store.config))
        mapper = data_source.source_datatype_to_feast_value_type()
    except Exception as exc:  # unreachable database, missing file, unsupported source kind...
        raise SourceUnreadable(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    mapping = dict(data_source.field_mapping or {})
    columns: dict[str, str] = {}
    for name, type_string in raw:
        try:
            dtype = dtype_name(int(mapper(str(type_string)).value))
        except (KeyError, ValueError, TypeError):  # a type Feast has no value type for
            dtype = "?"
        columns[mapping.get(name, name)] = dtype
    return columns


# --- Apply ---------------------------------------------------------------------------------------------


def _store_for(repo: RepoRef, project: str, *, uncached_sql: bool = False) -> Any:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    raw = raw_config(repo)
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


def _udf_placeholder(df: Any) -> Any:  # pragma: no cover - never called: Feast only builds and pickles it
    """What a UDF is while Feast plans an apply in the portal: the uploaded code never runs there."""
    return df


_PLACEHOLDER_TEXT = "def _udf_placeholder(df):\n    return df\n"


def _without_udfs(message: Any) -> list[Any]:
    """Swap every UDF in `message` for the placeholder (in place); returns copies of the originals, in order."""
    import dill

    originals = []
    for udf in udf_messages(message):
        saved = type(udf)()
        saved.CopyFrom(udf)
        originals.append(saved)
        udf.name = _udf_placeholder.__name__
        udf.body = dill.dumps(_udf_placeholder)
        udf.body_text = _PLACEHOLDER_TEXT
    return originals


def _restore_udfs(message: Any, originals: Sequence[Any], what: str) -> None:
    udfs = udf_messages(message)
    if len(udfs) != len(originals):
        raise InvalidInput(f"Feast rewrote the transformations of {what}: it cannot be planned exactly")
    for udf, original in zip(udfs, originals, strict=True):
        udf.CopyFrom(original)


def as_feast_stores(
    repo: RepoRef, project: str, upserts: Sequence[ObjectProto], deletes: Sequence[ObjectProto] = ()
) -> dict[Key, ObjectProto]:
    """The project's objects exactly as Feast would store them after applying `upserts` and `deletes`: on a
    SQL registry, the ones the apply touches or reads (unchanged otherwise); on a file registry, all of them.

    Feast's own `FeatureStore.apply` runs on a scratch copy of the project in a registry of the same kind
    (a file registry, or a SQL registry on SQLite with the live tables' rows for the project), with a
    throwaway SQLite online store and the repo's offline store (schema inference reads the sources). So
    the plan sees everything apply does: inferred schemas and entity columns, services widened over
    schema-less views, the data sources Feast writes for the views that carry them, defaults, what each
    registry kind keeps or drops on an update, and Feast's own serialization. The worker applies these
    protos and checks, before it commits, that Feast stored exactly them.

    Transformations never run here: every UDF is swapped for a placeholder before Feast sees it and swapped
    back afterwards (an on-demand view's schema is inferred in the upload sandbox instead).
    """
    import tempfile

    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    saved_udfs: dict[Key, list[Any]] = {}

    def placeholder(obj: ObjectProto) -> bytes:
        message = obj.message()  # every row Feast will read decodes, or the plan names the one that does not
        if obj.proto_type not in _UDF_CARRIERS:
            return obj.proto
        saved_udfs[obj.key] = _without_udfs(message)
        return bytes(message.SerializeToString())

    location = registry_location(repo)
    raw = raw_config(repo)
    with tempfile.TemporaryDirectory(prefix="feast-plan-") as scratch:
        if location.kind == "sql":
            named = {o.name for o in [*upserts, *deletes]}
            named |= {ref_name for o in upserts for (_, ref_name), _ in references(o)}
            named |= {source for o in upserts for source in _embedded_source_names(o.message())}
            url = _sql_scratch(location, project, Path(scratch), placeholder, named)
            raw["registry"] = {"registry_type": "sql", "path": url, "cache_mode": "none"}
        else:
            registry = feast_api().Registry()
            for obj in project_protos(repo, project).values():
                message = getattr(feast_api(), obj.proto_type)()
                message.ParseFromString(placeholder(obj))
                getattr(registry, _TYPES[obj.proto_type][2]).append(message)
            registry_path = Path(scratch) / "registry.db"
            registry_path.write_bytes(registry.SerializeToString())
            raw["registry"] = {"registry_type": "file", "path": str(registry_path), "cache_ttl_seconds": 0}
        for obj in upserts:
            placeholder(obj)  # the proposed code is restored, not the registered one
        raw["online_store"] = {"type": "sqlite", "path": str(Path(scratch) / "online.db")}
        raw.pop("batch_engine", None)
        try:
            config = RepoConfig(**raw)
        except Exception as exc:  # pydantic's ValidationError and Feast's config errors
            raise FeastConfigInvalid(f"{repo.yaml_path} is not a valid Feast configuration: {exc}") from exc
        config.repo_path = Path(repo.path)
        store = FeatureStore(config=config, repo_path=str(repo.path))
        objects = [_planning_object(o, project) for o in upserts]
        to_delete = [_planning_object(o, project) for o in deletes]
        try:
            store.apply(objects, objects_to_delete=to_delete, partial=not to_delete)
            after = _stored_protos(store.registry, project)
        except Exception as exc:  # Feast raises plain ValueError/RegistryInferenceFailure/... on bad definitions
            raise InvalidInput(f"Feast would refuse this apply: {type(exc).__name__}: {exc}") from exc
        finally:
            _dispose(store.registry)
    out: dict[Key, ObjectProto] = {}
    for key, obj in after.items():
        message = obj.message()
        if key in saved_udfs:
            _restore_udfs(message, saved_udfs[key], f"{key[0].replace('_', ' ')} {key[1]!r}")
        out[key] = ObjectProto(obj.kind, obj.proto_type, obj.name, message.SerializeToString())
    return out


def _dispose(registry: Any) -> None:
    """Close a used-once SqlRegistry's connection pools (a long-lived process must not keep them)."""
    for name in ("write_engine", "read_engine"):
        engine = getattr(registry, name, None)
        if engine is not None:
            engine.dispose()


# Tables copied to a scratch SQL registry only for the objects an apply touches or reads (all other rows
# of these tables are neither read nor written by Feast's apply of those objects), and tables not copied.
_UDF_CARRIERS = {"FeatureView", "StreamFeatureView", "OnDemandFeatureView"}


def _embedded_source_names(message: Any) -> set[str]:
    """The names of every data source embedded in a message (a view's batch and stream sources, a push
    source's batch source, an on-demand view's request sources...)."""
    return {m.name for m in nested_messages(message) if m.DESCRIPTOR.full_name == "feast.core.DataSource"}


_SCRATCH_BY_NAME = {
    "data_sources": "data_source_name",
    "feature_views": "feature_view_name",
    "stream_feature_views": "feature_view_name",
    "on_demand_feature_views": "feature_view_name",
    "label_views": "feature_view_name",
    "feature_services": "feature_service_name",
    "feature_view_version_history": "feature_view_name",
}
_SCRATCH_SKIPPED = {"saved_datasets", "validation_references", "permissions"}


def _sql_scratch(location: Any, project: str, directory: Path, placeholder: Any, named: set[str]) -> str:
    """A SQLite copy of a SQL registry's rows for the project, UDFs as placeholders: entities and the project's
    own rows in full; data sources, views and services only when `named` (what the apply touches, reads or
    carries: a view of the same name in any view table is copied, so Feast's name-conflict checks see it)."""
    from feast.infra.registry.sql import metadata
    from sqlalchemy import create_engine, inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    url = f"sqlite:///{directory / 'registry.db'}"
    scratch = create_engine(url)
    metadata.create_all(scratch)
    proto_types = {table: proto_type for proto_type, (_, table, _, _) in _TYPES.items()}
    try:
        with sql_engine(location.path).connect() as live, scratch.begin() as out:
            inspector = inspect(live)
            present = set(inspector.get_table_names())
            for table in metadata.sorted_tables:
                if table.name not in present or "project_id" not in table.c or table.name in _SCRATCH_SKIPPED:
                    continue
                columns = [table.c[c["name"]] for c in inspector.get_columns(table.name) if c["name"] in table.c]
                query = select(*columns).where(table.c.project_id == project)
                if table.name in _SCRATCH_BY_NAME:
                    if not named:
                        continue
                    query = query.where(table.c[_SCRATCH_BY_NAME[table.name]].in_(sorted(named)))
                rows = [dict(r._mapping) for r in live.execute(query)]
                if table.name in proto_types:
                    name_column, proto_column = _NAME_COLUMNS[table.name], _PROTO_COLUMNS[table.name]
                    for row in rows:
                        kind = _TYPES[proto_types[table.name]][0]
                        obj = ObjectProto(kind, proto_types[table.name], row[name_column], bytes(row[proto_column]))
                        row[proto_column] = placeholder(obj)
                if rows:
                    out.execute(table.insert(), rows)
    except SQLAlchemyError as exc:
        raise sql_registry_error(location, exc) from exc
    finally:
        scratch.dispose()
    return url


def _stored_protos(registry: Any, project: str) -> dict[Key, ObjectProto]:
    """The project's objects as a Feast registry object holds them now (file: its cached proto; SQL: its
    tables, read through the registry's own engine, so inside its transaction when there is one)."""
    from feast.infra.registry.sql import SqlRegistry

    if isinstance(registry, SqlRegistry):
        with registry.read_engine.connect() as conn:
            return _sql_project_protos(conn, project, None)
    return _project_protos_in(registry.cached_registry_proto.SerializeToString(), project, None)


def _planning_object(obj: ObjectProto, project: str) -> Any:
    """The Feast object for planning: its UDFs are placeholders and an on-demand view is not re-inferred
    (inferring runs the transformation; the sandbox did that with the uploaded code)."""
    message = obj.message()
    _without_udfs(message)
    item = _feast_object_for_apply(
        ObjectProto(obj.kind, obj.proto_type, obj.name, message.SerializeToString()), project
    )
    if obj.proto_type == "OnDemandFeatureView":
        item.infer_features = lambda: None
    return item


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
                before = _stored_protos(registry, project)
                store.apply(objects, objects_to_delete=to_delete, partial=not to_delete)
                _check_as_planned(before, _stored_protos(registry, project), upserts, deletes)
        finally:  # this store is used once: do not leave its connection pool behind in a long-lived worker
            _dispose(registry)
        return
    if getattr(registry, "cache_mode", None) == "sync":
        registry.cache_mode = "none"  # a file registry is read once; the apply writes it once, at the end
    before = project_protos(repo, project)
    atomic_file_store(
        registry,
        verify=lambda proto: _check_as_planned(
            before, _project_protos_in(proto.SerializeToString(), project, None), upserts, deletes
        ),
    )
    store.apply(objects, objects_to_delete=to_delete, partial=not to_delete)


def _check_as_planned(
    before: Mapping[Key, ObjectProto],
    after: Mapping[Key, ObjectProto],
    upserts: Sequence[ObjectProto],
    deletes: Sequence[ObjectProto],
) -> None:
    """Raise ApplyNotAsPlanned unless the registry after Feast's apply is `before` with exactly the planned
    upserts and deletions (content compared in canonical form). Called before the write is committed."""
    expected = {k: content_hash(o) for k, o in before.items()}
    for obj in deletes:
        expected.pop(obj.key, None)
    expected.update({o.key: content_hash(o) for o in upserts})
    actual = {k: content_hash(o) for k, o in after.items()}
    problems = []
    for key in sorted(set(expected) | set(actual)):
        what = f"{key[0].replace('_', ' ')} {key[1]!r}"
        if key not in actual:
            problems.append(f"{what} would be missing")
        elif key not in expected:
            problems.append(f"{what} would be added")
        elif actual[key] != expected[key]:
            changes = (
                feast_plan(after[key], next(o for o in upserts if o.key == key))
                if key in {o.key for o in upserts}
                else feast_plan(before[key], after[key])
            )
            fields = ", ".join(p["property"] for p in changes["properties"]) or "its serialization"
            problems.append(f"{what} would differ from the plan in {fields}")
    if problems:
        raise ApplyNotAsPlanned(
            "Feast would not store exactly what was approved, so nothing was applied: " + "; ".join(problems[:10])
        )


def _feast_object_for_apply(obj: ObjectProto, project: str) -> Any:
    message = obj.message()
    _set_project(message, project)
    if obj.proto_type == "StreamFeatureView" and message.spec.HasField("user_defined_function"):
        udf = message.spec.user_defined_function
        if udf.body_text and not udf.body:
            # Uploads store a UDF's source text only, and Feast builds a stream view from the pickle alone:
            # pickle the approved source, as `feast apply` would have (this runs the approved code only).
            import dill
            from feast.transformation.udf_rehydrate import rehydrate_udf_from_source

            function = rehydrate_udf_from_source(udf.body_text, preferred_name=udf.name or None)
            if function is None:
                raise InvalidInput(f"the transformation of stream view {obj.name!r} does not define {udf.name!r}")
            udf.body = dill.dumps(function, recurse=True)
    return _feast_object(ObjectProto(obj.kind, obj.proto_type, obj.name, message.SerializeToString()), strip=False)
