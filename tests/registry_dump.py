"""The catalog held to `feast registry-dump`: object by object, field by field (one definition, used by the
sync tests and the repo corpus)."""

from __future__ import annotations

import base64
import json
from typing import Any

from catalog.models import CatalogObject

# Feast's ValueType enum names, as registry-dump prints them -> the type names users write (feast.types).
_SCALARS = {
    "INVALID": "Invalid",
    "BYTES": "Bytes",
    "STRING": "String",
    "INT32": "Int32",
    "INT64": "Int64",
    "DOUBLE": "Float64",
    "FLOAT": "Float32",
    "BOOL": "Bool",
    "UNIX_TIMESTAMP": "UnixTimestamp",
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
# Feast 0.67's proto enum lacks two of its Python enum's values, so registry-dump prints them as numbers
_UNNAMED_IN_PROTO = {30: "PDF_BYTES", 31: "IMAGE_BYTES"}
SOURCE_TYPES = {"BATCH_FILE": "file", "PUSH_SOURCE": "push", "REQUEST_SOURCE": "request", "STREAM_KAFKA": "kafka"}
CUSTOM_SOURCE_CLASSES = {"PostgreSQLSource": "postgres"}  # a CUSTOM_SOURCE's kind, by its Python class


def source_kind_and_location(ds: dict[str, Any]) -> tuple[str, str]:
    """What the dump says a source is and where it reads: a custom source by its class and the table or query
    in its (base64, JSON) custom options."""
    if ds["type"] == "CUSTOM_SOURCE":
        options = json.loads(base64.b64decode(ds["customOptions"]["configuration"]))
        kind = CUSTOM_SOURCE_CLASSES[ds["dataSourceClassType"].rsplit(".", 1)[1]]
        return kind, options.get("table") or options.get("query") or ""
    location = ds.get("fileOptions", {}).get("uri") or ds.get("kafkaOptions", {}).get("topic", "")
    return SOURCE_TYPES[ds["type"]], location


VIEW_KINDS = [
    ("featureViews", "batch"),
    ("streamFeatureViews", "stream"),
    ("onDemandFeatureViews", "on_demand"),
    ("labelViews", "label"),
]


def dtype(value_type: str | int | None) -> str:
    """`DOUBLE_LIST` -> `Array(Float64)`; an omitted value type is the enum's 0, INVALID."""
    value_type = _UNNAMED_IN_PROTO[value_type] if isinstance(value_type, int) else value_type or "INVALID"
    for suffix, wrapper in (("_LIST", "Array"), ("_SET", "Set")):
        if value_type.endswith(suffix):
            return f"{wrapper}({_SCALARS[value_type.removesuffix(suffix)]})"
    return _SCALARS[value_type]


def obj(project: str, kind: str, name: str) -> CatalogObject:
    return CatalogObject.objects.get(project__name=project, kind=kind, name=name)


def features_of(o: CatalogObject) -> list[tuple[str, str, str, dict[str, str]]]:
    return [(f.name, f.dtype, f.description, f.tags) for f in o.features.filter(status="active").order_by("position")]


def _common(o: CatalogObject, spec: dict[str, Any]) -> None:
    assert (o.description, o.owner, o.tags) == (
        spec.get("description", ""),
        spec.get("owner", ""),
        spec.get("tags", {}),
    ), o.name


def assert_mirrors_registry_dump(dump: dict[str, Any], project: str) -> int:
    """Every object, field, dtype, owner, tag, description, TTL and service order equals the dump's;
    nothing extra in the catalog. Returns how many objects were compared."""
    checked = 0
    for e in dump.get("entities", []):
        spec = e["spec"]
        if spec["name"] == "__dummy":  # Feast's placeholder entity of entity-less views
            continue
        o = obj(project, "entity", spec["name"])
        _common(o, spec)
        assert o.join_keys == [spec["joinKey"]]
        assert o.value_type == dtype(spec.get("valueType"))
        checked += 1
    for ds in dump.get("dataSources", []):
        o = obj(project, "data_source", ds["name"])
        _common(o, ds)
        assert (o.subkind, o.location) == source_kind_and_location(ds)
        assert o.timestamp_field == ds.get("timestampField", "")
        if ds["type"] == "REQUEST_SOURCE":
            schema = ds["requestDataOptions"]["schema"]
            assert features_of(o) == [(f["name"], dtype(f["valueType"]), "", {}) for f in schema]
        checked += 1
    for key, kind in VIEW_KINDS:
        for fv in dump.get(key, []):
            spec = fv["spec"]
            o = obj(project, "feature_view", spec["name"])
            assert o.subkind == kind
            _common(o, spec)
            # As Feast stores them: a stream view lists its entity columns among its features too, at
            # places that depend on the hash seed of the process that wrote the proto (apply, and the dump's
            # own re-serialization): the other features keep their declared order.
            expected = [
                (f["name"], dtype(f.get("valueType")), f.get("description", ""), f.get("tags", {}))
                for f in spec["features"]
            ]
            actual = features_of(o)
            keys = {c["name"] for c in spec.get("entityColumns", [])} if kind == "stream" else set()
            assert [f for f in actual if f[0] not in keys] == [f for f in expected if f[0] not in keys], o.name
            assert sorted(actual) == sorted(expected), o.name
            if kind != "on_demand":
                assert o.entity_names == [e for e in spec.get("entities", []) if e != "__dummy"]
                # Feast stores "no expiry" as 0s (and reads an omitted TTL the same way)
                assert o.ttl_seconds == int(spec.get("ttl", "0s").rstrip("s")), o.name
                source = spec.get("source" if kind == "label" else "batchSource", {})
                assert o.batch_source_name == source.get("name", "")
            checked += 1
    for fs in dump.get("featureServices", []):
        spec = fs["spec"]
        o = obj(project, "feature_service", spec["name"])
        _common(o, spec)
        expected_vector = [
            (p.get("featureViewNameAlias") or p["featureViewName"], c["name"], dtype(c.get("valueType")))
            for p in spec["features"]
            for c in p["featureColumns"]
        ]
        actual = [(v.view_alias or v.view_name, v.feature_name, v.dtype) for v in o.vector.order_by("index")]
        assert actual == expected_vector, o.name
        assert list(o.vector.order_by("index").values_list("index", flat=True)) == list(range(len(expected_vector)))
        checked += 1
    for sd in dump.get("savedDatasets", []):
        spec = sd["spec"]
        o = obj(project, "saved_dataset", spec["name"])
        _common(o, spec)
        assert o.spec.get("features", []) == spec.get("features", []), o.name
        ((storage, options),) = spec.get("storage", {}).items()
        assert o.subkind == storage.removesuffix("Storage"), o.name
        assert o.location == (options.get("uri") or options.get("table") or options.get("path", "")), o.name
        checked += 1
    for permission in dump.get("permissions", []):
        spec = permission["spec"]
        o = obj(project, "permission", spec["name"])
        _common(o, spec)
        assert (o.spec.get("types", []), o.spec.get("actions", [])) == (spec.get("types", []), spec.get("actions", []))
        assert o.spec.get("name_patterns", []) == spec.get("namePatterns", []), o.name
        checked += 1
    # Feast 0.67's registry-dump does not print validation references: they are compared where they are written.
    in_catalog = CatalogObject.objects.filter(project__name=project).exclude(status="removed")
    assert in_catalog.exclude(kind="validation_reference").count() == checked
    return checked
