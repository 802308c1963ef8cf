"""Registry protos turned into the portal's plain data (content hashes without Feast's volatile parts)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from feast.protos.feast.core.DataSource_pb2 import DataSource as DataSourceProto
    from feast.protos.feast.core.FeatureService_pb2 import FeatureService as FeatureServiceProto
    from feast.protos.feast.core.FeatureViewVersion_pb2 import FeatureViewVersionRecord
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
    from google.protobuf.message import Message


from catalog.feast_gateway.base import (
    DataSourceInfo,
    EntityInfo,
    FeatureInfo,
    FeatureServiceInfo,
    FeatureViewInfo,
    FeatureViewVersionInfo,
    MaterializationInterval,
    ProjectInfo,
    RegistryLocation,
    RegistryRecordInfo,
    RegistrySnapshot,
    Spec,
    UnreadableObject,
    VectorEntry,
    feast_api,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
# A CUSTOM_SOURCE is named by the Python class Feast stores with it (data_source_class_type).
_CUSTOM_SOURCE_KINDS = {
    "PostgreSQLSource": "postgres",
    "ClickhouseSource": "clickhouse",
    "CouchbaseColumnarSource": "couchbase",
    "MongoDBSource": "mongodb",
    "MsSqlServerSource": "mssql",
    "OracleSource": "oracle",
    "RaySource": "ray",
    "ChrononSource": "chronon",
}

# Feast ValueType enum name -> the type name users write in definitions (feast.types).
_DTYPES = {
    "INVALID": "Invalid",
    "UNKNOWN": "Invalid",  # the Python enum's name for the proto's INVALID (0)
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
    "SCALAR_MAP": "ScalarMap",
    "ZONED_TIMESTAMP": "ZonedTimestamp",
}


def dtype_from_enum_name(name: str) -> str:
    """Feast's type name for a ValueType enum name (`DOUBLE_LIST` -> Array(Float64))."""
    for suffix, wrapper in (("_LIST", "Array"), ("_SET", "Set")):
        if name.endswith(suffix):
            inner = name[: -len(suffix)]
            return f"{wrapper}({_DTYPES.get(inner, inner.title())})"
    return _DTYPES.get(name, name.title())


@cache
def dtype_name(value_type: int) -> str:
    """Feast's type name for a ValueType enum value (Float32, Array(Int64), ...). Read with Feast's Python
    enum: Feast 0.67 stores PDF_BYTES (30) and IMAGE_BYTES (31), which its proto enum does not define."""
    try:
        name = feast_api().ValueType(value_type).name
    except ValueError:
        return f"Unknown({value_type})"
    return dtype_from_enum_name(str(name))


def dtype_value(name: str) -> int:
    """The ValueType enum value for a type name (inverse of dtype_name)."""
    for member in feast_api().ValueType:
        if dtype_name(int(member.value)) == name:
            return int(member.value)
    raise ValueError(f"unknown dtype {name!r}")


def _ts(message: Any, field_name: str) -> datetime | None:
    if not message.HasField(field_name):
        return None
    value = getattr(message, field_name)
    if value.seconds == 0 and value.nanos == 0:
        return None
    return datetime.fromtimestamp(value.seconds + value.nanos / 1e9, tz=UTC)


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
    if isinstance(message, feast_api().DataSource):
        message.ClearField("meta")
        message.ClearField("project")
        if message.type != message.SourceType.CUSTOM_SOURCE:
            # Serialization only: Feast writes the Python class name on some paths and not on others (file
            # registry metadata updates, SqlRegistry's top-level sources), and reads it only for custom sources.
            message.ClearField("data_source_class_type")
    elif message.DESCRIPTOR.full_name == "feast.core.StreamFeatureViewSpec":
        _entity_columns_last(message)
    elif message.DESCRIPTOR.name in {"UserDefinedFunction", "UserDefinedFunctionV2"} and message.body_text:
        # The dill pickle of a UDF changes with re-serialization (and Python versions) even when the
        # code does not; body_text, the source the user wrote, is the content.
        message.ClearField("body")


def _entity_columns_last(spec: Message) -> None:
    """Feast 0.67 stores a stream view's entity columns among its features in string-hash order (it varies
    with PYTHONHASHSEED between two `feast apply` runs of the same file): compare them after the others."""
    keys = {c.name for c in spec.entity_columns}
    features = list(spec.features)
    ordered = [f for f in features if f.name not in keys] + [f for f in features if f.name in keys]
    if [f.name for f in ordered] != [f.name for f in features]:
        copies = [type(f)() for f in ordered]
        for copy, original in zip(copies, ordered, strict=True):
            copy.CopyFrom(original)
        del spec.features[:]
        spec.features.extend(copies)


_UDF_TYPES = frozenset({"UserDefinedFunction", "UserDefinedFunctionV2"})


def nested_messages(message: Any) -> list[Any]:
    """`message` and every message inside it, depth first (repeated fields and map values included)."""
    found = [message]
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.is_repeated and descriptor.message_type.GetOptions().map_entry:
            items = list(value.values()) if descriptor.message_type.fields_by_name["value"].message_type else []
        else:
            items = list(value) if descriptor.is_repeated else [value]
        for item in items:
            found += nested_messages(item)
    return found


def nul_text_fields(message: Any, prefix: str = "") -> list[str]:
    """The paths of the text fields (and map keys) in `message` that hold a NUL character, which no PostgreSQL
    text or JSON column can store (bytes fields, such as a UDF's pickled body, may hold NUL bytes)."""
    if not prefix and "spec" in message.DESCRIPTOR.fields_by_name:  # named as users write them: no "spec."
        message = message.spec
    found: list[str] = []
    string = 9  # google.protobuf.descriptor.FieldDescriptor.TYPE_STRING
    for descriptor, value in message.ListFields():
        path = f"{prefix}{descriptor.name}"
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            value_field = descriptor.message_type.fields_by_name["value"]
            for key, item in value.items():
                if "\x00" in str(key):
                    found.append(f"{path} (a key)")
                elif value_field.message_type is not None:
                    found += nul_text_fields(item, f"{path}[{str(key)[:40]}].")
                elif value_field.type == string and "\x00" in item:
                    found.append(f"{path}[{str(key)[:40]}]")
        elif descriptor.message_type is not None:
            for i, item in enumerate(value if descriptor.is_repeated else [value]):
                found += nul_text_fields(item, f"{path}[{i}]." if descriptor.is_repeated else f"{path}.")
        elif descriptor.type == string and any("\x00" in v for v in (value if descriptor.is_repeated else [value])):
            found.append(path)
    return found


def _without_nul(text: str) -> str:
    return text.replace("\x00", "\\x00")


def udf_messages(message: Any) -> list[Any]:
    """Every UDF message inside `message` (current and legacy fields, embedded views included)."""
    return [m for m in nested_messages(message) if m.DESCRIPTOR.name in _UDF_TYPES]


def _content(spec: Message) -> tuple[Spec, str]:
    """The normalized spec (JSON on demand) plus its content hash (deterministic serialization)."""
    clean = type(spec)()
    clean.CopyFrom(spec)
    _strip_volatile(clean)
    if "project" in clean.DESCRIPTOR.fields_by_name:
        clean.ClearField("project")
    digest = hashlib.sha256(clean.SerializeToString(deterministic=True)).hexdigest()
    return Spec(clean), digest


_EMBEDDED_VIEW_TYPES = frozenset(
    {
        "feast.core.FeatureView",
        "feast.core.FeatureViewSpec",
        "feast.core.StreamFeatureViewSpec",
        "feast.core.OnDemandFeatureViewSpec",
    }
)


def _reduce_embedded(message: Message) -> None:
    """In place: every embedded copy of another object reduced to what identifies it (a data source or view
    to its name, a projected feature to its name and type), so only the object's own content is left."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.is_repeated and descriptor.message_type.GetOptions().map_entry:
            if descriptor.message_type.fields_by_name["value"].message_type is None:
                continue
            items = list(value.values())
        else:
            items = list(value) if descriptor.is_repeated else [value]
        full_name = descriptor.message_type.full_name
        for item in items:
            if full_name == "feast.core.DataSource" or full_name in _EMBEDDED_VIEW_TYPES:
                name = item.name if full_name == "feast.core.DataSource" else getattr(item, "spec", item).name
                item.Clear()
                if full_name == "feast.core.FeatureView":
                    item.spec.name = name
                else:
                    item.name = name
            elif full_name == "feast.core.FeatureViewProjection":
                for column in item.feature_columns:
                    name, value_type = column.name, column.value_type
                    column.Clear()
                    column.name, column.value_type = name, value_type
                _reduce_embedded(item)
            else:
                _reduce_embedded(item)


def own_content_hash(spec: Message) -> str:
    """The content hash of what the object itself defines: embedded copies of other objects (a view's data
    source, a service's or on-demand view's projected features) count by name only. Equal own hashes with
    different content hashes mean the object changed only because something it embeds did."""
    clean = type(spec)()
    clean.CopyFrom(spec)
    _strip_volatile(clean)
    if "project" in clean.DESCRIPTOR.fields_by_name:
        clean.ClearField("project")
    _reduce_embedded(clean)
    return hashlib.sha256(clean.SerializeToString(deterministic=True)).hexdigest()


_SPEC_TYPES = {
    ("entity", ""): "feast.core.EntitySpecV2",
    ("data_source", ""): "feast.core.DataSource",
    ("feature_view", "batch"): "feast.core.FeatureViewSpec",
    ("feature_view", "stream"): "feast.core.StreamFeatureViewSpec",
    ("feature_view", "on_demand"): "feast.core.OnDemandFeatureViewSpec",
    ("feature_view", "label"): "feast.core.LabelViewSpec",
    ("feature_service", ""): "feast.core.FeatureServiceSpec",
}


def recanonical_hash(kind: str, subkind: str, spec: dict[str, Any]) -> str | None:
    """The content hash of a spec the catalog stored earlier, under today's canonical form (None when it
    cannot be read back). A sync compares it before calling a changed hash a change: when only the
    canonical form moved (a serialization-only field newly ignored), nothing in the registry changed."""
    from google.protobuf import json_format, message_factory, symbol_database

    name = _SPEC_TYPES.get((kind, subkind if kind == "feature_view" else ""))
    if name is None:
        return None
    try:
        descriptor = symbol_database.Default().pool.FindMessageTypeByName(name)
        message = message_factory.GetMessageClass(descriptor)()
        json_format.ParseDict(spec, message, ignore_unknown_fields=True)
    except (KeyError, json_format.ParseError, TypeError, ValueError):
        return None
    return _content(message)[1]


def _set_project(message: Message, project: str) -> None:
    if "spec" in message.DESCRIPTOR.fields_by_name:
        message.spec.project = project
    else:
        message.project = project


def _vector_search(spec: Any) -> dict[str, Any]:
    """A field's vector-search settings (Feast 0.67 FeatureSpecV2), or {} for a plain field."""
    index = bool(getattr(spec, "vector_index", False))
    length = int(getattr(spec, "vector_length", 0) or 0)
    metric = str(getattr(spec, "vector_search_metric", "") or "")
    if not (index or length or metric):
        return {}
    return {"index": index, "length": length, "search_metric": metric}


def _features(specs: Iterable[Any]) -> list[FeatureInfo]:
    return [
        FeatureInfo(
            name=f.name,
            dtype=dtype_name(f.value_type),
            description=f.description,
            tags=dict(f.tags),
            position=i,
            vector_search=_vector_search(f),
        )
        for i, f in enumerate(specs)
    ]


def _source_kind(ds: DataSourceProto) -> str:
    """The source's kind: its SourceType, or for a custom source, its class (`PostgreSQLSource` -> postgres)."""
    kind = _SOURCE_KINDS.get(feast_api().DataSource.SourceType.Name(ds.type), "unknown")
    if kind == "custom":
        return _CUSTOM_SOURCE_KINDS.get(ds.data_source_class_type.rpartition(".")[2], "custom")
    return kind


def _custom_location(ds: DataSourceProto) -> str:
    """A custom source's table, query or path: Feast keeps its options as JSON in custom_options."""
    try:
        options = json.loads(ds.custom_options.configuration or b"{}")
    except ValueError:
        return ""
    if not isinstance(options, dict):
        return ""
    return next((str(options[k]) for k in ("table", "query", "path", "uri") if options.get(k)), "")


def _source_location(ds: DataSourceProto) -> str:
    if ds.HasField("custom_options"):
        return _custom_location(ds)
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
    kind = _source_kind(ds)
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


def _entity(e: Any) -> EntityInfo:
    spec, digest = _content(e.spec)
    return EntityInfo(
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
    elif kind == "label":  # a label view reads one (push) source, which Feast calls `source`
        batch_source = spec_msg.source.name if spec_msg.HasField("source") else ""
        udf_source = ""
    else:
        batch_source = spec_msg.batch_source.name if spec_msg.HasField("batch_source") else ""
        stream_source = spec_msg.stream_source.name if spec_msg.HasField("stream_source") else ""
        source_views = [v.name for v in getattr(spec_msg, "source_views", [])]
        udf_source = ""
        if kind == "stream" and spec_msg.HasField("user_defined_function"):
            udf_source = spec_msg.user_defined_function.body_text
    # Feast stores "no expiry" as a TTL of 0s (and reads an unset TTL the same way).
    ttl = None if kind == "on_demand" else int(spec_msg.ttl.seconds)
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
        # As Feast stores them: a stream view lists its entity columns among its features too (Feast
        # serves them as features; services over the view select only the others).
        features=_features(spec_msg.features),
        entities=[e for e in spec_msg.entities if e != "__dummy"],
        entity_columns=_features(spec_msg.entity_columns),
        ttl_seconds=ttl,  # 0 is Feast's "no expiry"; None: the view has no TTL (on-demand)
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
        org=str(getattr(spec_msg, "org", "") or ""),
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


def _record(
    kind: str,
    project: str,
    spec: Any,
    meta: Any | None,
    *,
    subkind: str = "",
    location: str = "",
    upstream: list[tuple[str, str, str]] | None = None,
) -> RegistryRecordInfo:
    """A saved dataset, validation reference or permission from its spec message (and meta, where it has one)."""
    content, digest = _content(spec)
    return RegistryRecordInfo(
        project=project,
        name=spec.name,
        description=getattr(spec, "description", ""),
        owner="",
        tags=dict(spec.tags),
        created_at=_ts(meta, "created_timestamp") if meta is not None else None,
        updated_at=_ts(meta, "last_updated_timestamp") if meta is not None else None,
        content=content,
        content_hash=digest,
        kind=kind,
        subkind=subkind,
        location=location,
        upstream=upstream or [],
    )


def _saved_dataset(proto: Any, project: str) -> RegistryRecordInfo:
    spec = proto.spec
    storage = spec.storage.WhichOneof("kind") or ""
    location = ""
    if storage:
        options = getattr(spec.storage, storage)
        location = next(
            (str(getattr(options, a)) for a in ("uri", "path", "table", "table_ref") if getattr(options, a, "")), ""
        )
    views = sorted({ref.split(":", 1)[0] for ref in spec.features if ":" in ref})
    upstream = [("view_dataset", "feature_view", v) for v in views]
    if spec.feature_service_name:
        upstream.append(("service_dataset", "feature_service", spec.feature_service_name))
    subkind = storage.removesuffix("_storage")
    return _record("saved_dataset", project, spec, proto.meta, subkind=subkind, location=location, upstream=upstream)


def _validation_reference(proto: Any, project: str) -> RegistryRecordInfo:
    dataset = proto.reference_dataset_name
    upstream = [("dataset_reference", "saved_dataset", dataset)] if dataset else []
    return _record("validation_reference", project, proto, None, upstream=upstream)


def _permission(proto: Any, project: str) -> RegistryRecordInfo:
    policy = proto.spec.policy.WhichOneof("policy_type") or ""
    return _record("permission", project, proto.spec, proto.meta, subkind=policy.removesuffix("_policy"))


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
    unreadable: list[UnreadableObject] | None = None,
) -> RegistrySnapshot:
    snap = RegistrySnapshot(
        location=location, fingerprint=fingerprint, feature_view_versions=versions, unreadable=list(unreadable or [])
    )

    def read(kind: str, project: str, name: str, convert: Callable[[], T], message: Any) -> T | None:
        """One object as plain data; None (and listed as unreadable) when its proto has a shape the portal
        cannot map or text it cannot store: one object never stops the rest of the registry from being read."""
        nul = nul_text_fields(message)
        if nul:
            error = f"its {', '.join(nul[:5])} hold a NUL character (\\x00), which the catalog's database cannot store"
            snap.unreadable.append(UnreadableObject(project, kind, _without_nul(name), error))
            return None
        try:
            return convert()
        except Exception as exc:
            logger.warning("cannot read %s %s/%s from the registry", kind, project, name, exc_info=True)
            snap.unreadable.append(UnreadableObject(project, kind, name, f"{type(exc).__name__}: {exc}"[:2000]))
            return None

    project_names: list[str] = []
    for p in proto.projects:
        spec, digest = _content(p.spec)
        project_names.append(p.spec.name)
        if nul_text_fields(p.spec):  # a project is never skipped: its text is shown with the NUL escaped
            logger.warning("project %r holds NUL characters; the catalog shows them as \\x00", p.spec.name)
            spec = Spec(json=json.loads(json.dumps(spec.json()).replace("\\u0000", "\\\\x00")))
        snap.projects.append(
            ProjectInfo(
                project=p.spec.name,
                name=p.spec.name,
                description=_without_nul(p.spec.description),
                owner=_without_nul(p.spec.owner),
                tags={_without_nul(k): _without_nul(v) for k, v in p.spec.tags.items()},
                created_at=_ts(p.meta, "created_timestamp"),
                updated_at=_ts(p.meta, "last_updated_timestamp"),
                content=spec,
                content_hash=digest,
            )
        )
    for e in proto.entities:
        if e.spec.name == "__dummy":  # Feast's placeholder for entity-less views
            continue
        if (entity := read("entity", e.spec.project, e.spec.name, partial(_entity, e), e)) is not None:
            snap.entities.append(entity)
    seen_sources: set[tuple[str, str]] = set()
    for ds in proto.data_sources:
        seen_sources.add((ds.project, ds.name))
        if (source := read("data_source", ds.project, ds.name, partial(_data_source, ds, ds.project), ds)) is not None:
            snap.data_sources.append(source)
    for kind, container in [
        ("batch", proto.feature_views),
        ("stream", proto.stream_feature_views),
        ("on_demand", proto.on_demand_feature_views),
        ("label", proto.label_views),
    ]:
        for fv in container:
            info = read(
                "feature_view",
                fv.spec.project,
                fv.spec.name,
                partial(_feature_view, fv, kind, fv.spec.project),
                fv,
            )
            if info is None:
                continue
            snap.feature_views.append(info)
            # Sources used only inline (not registered separately) still belong in the catalog.
            for field_name in ("source",) if kind == "label" else ("batch_source", "stream_source"):
                if kind != "on_demand" and fv.spec.HasField(field_name):
                    inline = getattr(fv.spec, field_name)
                    if inline.name and (fv.spec.project, inline.name) not in seen_sources:
                        seen_sources.add((fv.spec.project, inline.name))
                        source = read(
                            "data_source",
                            fv.spec.project,
                            inline.name,
                            partial(_data_source, inline, fv.spec.project),
                            inline,
                        )
                        if source is not None:
                            snap.data_sources.append(source)
    for records, convert in (
        (proto.saved_datasets, _saved_dataset),
        (proto.validation_references, _validation_reference),
        (proto.permissions, _permission),
    ):
        for message in records:
            spec = message.spec if "spec" in message.DESCRIPTOR.fields_by_name else message
            kind = {"SavedDataset": "saved_dataset", "ValidationReference": "validation_reference"}.get(
                type(message).__name__, "permission"
            )
            record = read(kind, spec.project, spec.name, partial(convert, message, spec.project), message)
            if record is not None:
                snap.records.append(record)
    for fs in proto.feature_services:
        service = read(
            "feature_service", fs.spec.project, fs.spec.name, partial(_feature_service, fs, fs.spec.project), fs
        )
        if service is not None:
            snap.feature_services.append(service)
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
