"""Training datasets, the input side (web tier): resolve the service or feature list in the catalog,
and read, check and normalise the entity rows (an uploaded CSV/parquet file, inline columns, or times)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from catalog import feast_gateway as gateway
from catalog.contracts import Contract, contract_for_features, contract_for_vector
from catalog.exceptions import InvalidInput, PortalError
from catalog.humanize import human_size
from catalog.models import CatalogObject, Feature, ServiceFeature
from catalog.models.projects import Status as CatalogStatus
from catalog.timeparse import parse_time_input
from jobs.services.preview import project_objects_for_selection, request_fields_of, views_needing

TIMESTAMP = "event_timestamp"
MAX_TIMESTAMPS = 1000
MAX_FEATURES = 1000
PREVIEW_ROWS = 20
UPLOADS = "_uploads"


class EntityFileTooLarge(PortalError):
    """An entity file over PORTAL_TRAINING_MAX_UPLOAD_BYTES (refused before it is read)."""

    status_code = 413
    code = "too_large"


def max_upload_bytes() -> int:
    """The largest entity file accepted."""
    return int(settings.PORTAL_TRAINING_MAX_UPLOAD_BYTES)


def check_upload_size(size: int | None) -> None:
    """Refuse a declared size over the limit (the request's Content-Length, or the file's size)."""
    limit = max_upload_bytes()
    if size is not None and size > limit:
        raise EntityFileTooLarge(
            f"the entity file is {human_size(size)}; at most {human_size(limit)} is accepted (PORTAL_TRAINING_MAX_UPLOAD_BYTES)"
        )


# --- What a request asks for, checked against the catalog ----------------------------------------------


@dataclass(frozen=True)
class DatasetTarget:
    """A feature service or a feature list, resolved in the catalog."""

    project: str
    feature_service: str | None
    service_version: int | None
    features: list[str]  # `view:feature` references, in contract order
    contract: Contract
    join_keys: dict[str, str]  # join key → its entity's value type (Feast type name)
    request_fields: dict[str, str]  # request-data fields on-demand views need → dtype
    entity_views: list[str]  # batch views holding every join key (for "every entity at these times")


def _active(qs: Any) -> Any:
    return qs.exclude(status=CatalogStatus.REMOVED)


def training_target(*, project: str, feature_service: str | None, features: list[str] | None) -> DatasetTarget:
    """Resolve and check the service or feature list; InvalidInput / ObjectNotFound name what is wrong."""
    objects = project_objects_for_selection(project=project, feature_service=feature_service, features=features)
    views: dict[str, CatalogObject] = {
        v.name: v
        for v in objects.filter(kind=CatalogObject.Kind.FEATURE_VIEW).only("id", "name", "entity_names", "subkind")
    }
    version: int | None = None
    if feature_service:
        service = objects.filter(kind=CatalogObject.Kind.FEATURE_SERVICE, name=feature_service).first()
        if service is None:
            raise InvalidInput(
                f"feature service {feature_service} is not in project {project}",
                {"feature_service": [f"unknown feature service {feature_service}"]},
            )
        rows = list(ServiceFeature.objects.filter(service=service).order_by("index"))
        if not rows:
            raise InvalidInput(f"feature service {feature_service} has no features", {"feature_service": ["empty"]})
        contract = contract_for_vector([(r.view_name, r.view_alias, r.feature_name, r.dtype) for r in rows])
        involved = [views[n] for n in dict.fromkeys(r.view_name for r in rows) if n in views]
        version = service.version
    else:
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise InvalidInput("features must be a list of 'view:feature' strings", {"features": ["list of strings"]})
        if len(features) > MAX_FEATURES:
            raise InvalidInput(f"at most {MAX_FEATURES} features", {"features": [f"max {MAX_FEATURES}"]})
        if len(set(features)) != len(features):
            raise InvalidInput("a feature is listed twice", {"features": ["duplicates"]})
        resolved: list[tuple[str, str, str]] = []
        involved = []
        for ref in features:
            view_name, sep, name = ref.partition(":")
            if not sep or not name:
                raise InvalidInput(f"{ref!r} is not 'view:feature'", {"features": [f"{ref}: not view:feature"]})
            view = views.get(view_name)
            if view is None:
                raise InvalidInput(f"unknown feature view {view_name}", {"features": [f"{ref}: unknown view"]})
            feature = _active(Feature.objects.filter(view=view, name=name)).first()
            if feature is None:
                raise InvalidInput(f"unknown feature {ref}: {view_name} has no feature {name}", {"features": [ref]})
            resolved.append((view_name, name, feature.dtype))
            if view not in involved:
                involved.append(view)
        contract = contract_for_features(resolved)
    seen: set[int] = set()
    needed = [v for view in involved for v in views_needing(view, seen)]
    entity_names = {name for v in needed for name in v.entity_names}
    join_keys: dict[str, str] = {}
    for entity in objects.filter(kind=CatalogObject.Kind.ENTITY, name__in=entity_names).only("join_keys", "value_type"):
        join_keys.update(dict.fromkeys(entity.join_keys, entity.value_type))
    entity_views = [
        v.name
        for v in needed
        if v.subkind != "on_demand"
        and set(join_keys)
        <= {k for e in objects.filter(kind=CatalogObject.Kind.ENTITY, name__in=v.entity_names) for k in e.join_keys}
    ]
    return DatasetTarget(
        project=project,
        feature_service=feature_service or None,
        service_version=version,
        features=contract.references,
        contract=contract,
        join_keys=join_keys,
        request_fields=request_fields_of(needed),
        entity_views=entity_views,
    )


# --- Entity rows: read, check, normalise ------------------------------------------------------------------


def arrow_type(dtype: str) -> Any:
    """The Arrow type of a Feast scalar type name (None for the types a dataset keeps as text)."""
    import pyarrow as pa

    return {
        "Int64": pa.int64(),
        "Int32": pa.int32(),
        "Float64": pa.float64(),
        "Float32": pa.float32(),
        "String": pa.string(),
        "Bool": pa.bool_(),
        "Bytes": pa.binary(),
        "PdfBytes": pa.binary(),
        "ImageBytes": pa.binary(),
        "UnixTimestamp": pa.timestamp("us", tz="UTC"),
    }.get(dtype)


def _entity_format(name: str, head: bytes) -> str:
    """parquet (by its magic bytes or extension) or CSV (.csv, .txt, or no extension)."""
    suffix = Path(name).suffix.lower()
    if head.startswith(b"PAR1") or suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in ("", ".csv", ".txt"):
        return "csv"
    raise InvalidInput(f"{name}: entity files are CSV or parquet", {"entity_file": ["upload a .csv or .parquet file"]})


def read_entity_file(*, file: IO[bytes], name: str, size: int | None, target: DatasetTarget) -> Any:
    """An uploaded CSV or parquet file as a checked, normalised pyarrow Table (see normalize_entities)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    check_upload_size(size)
    limit = max_upload_bytes()
    data = file.read(limit + 1)
    if len(data) > limit:  # no declared size (chunked upload): count what arrives
        raise EntityFileTooLarge(
            f"the entity file is larger than {human_size(limit)} (PORTAL_TRAINING_MAX_UPLOAD_BYTES)"
        )
    if not data:
        raise InvalidInput("the entity file is empty: it has no rows", {"entity_file": ["empty file"]})
    kind = _entity_format(name, data[:4])
    try:
        if kind == "parquet":
            table = pq.read_table(pa.BufferReader(data))
        else:
            types = {k: t for k, t in ((k, arrow_type(v)) for k, v in target.join_keys.items()) if t is not None}
            types |= {k: t for k, t in ((k, arrow_type(v)) for k, v in target.request_fields.items()) if t}
            table = pacsv.read_csv(
                pa.BufferReader(data),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{name} is not a readable {kind} file: {message}", {"entity_file": [message]}) from None
    return normalize_entities(table, target)


def entities_from_columns(columns: Any, target: DatasetTarget) -> Any:
    """Entity rows given inline as `{"employee_id": [...], "event_timestamp": [...], ...}`."""
    import pyarrow as pa

    if not isinstance(columns, dict) or not columns:
        raise InvalidInput("entities must map column names to lists of values", {"entities": ["an object of lists"]})
    lengths = {len(v) for v in columns.values() if isinstance(v, list)}
    if len(lengths) != 1 or not all(isinstance(v, list) for v in columns.values()):
        raise InvalidInput("every entities column must be a list of the same length", {"entities": ["lists"]})
    try:
        table = pa.table({str(k): pa.array(v) for k, v in columns.items()})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"entities: {exc}", {"entities": [str(exc)]}) from None
    return normalize_entities(table, target)


def normalize_entities(table: Any, target: DatasetTarget) -> Any:
    """Check entity rows against the target and normalise them.

    Needs every join key, `event_timestamp` and the request fields of on-demand views; at least one
    row and at most PORTAL_TRAINING_MAX_ENTITY_ROWS. Join keys and request fields are cast to their
    Feast types, `event_timestamp` to UTC (naive means UTC; CSV holds ISO 8601). Other columns
    (labels, weights) are kept as they are. Rows with the same keys and time are kept once (Feast's
    join would drop the copies anyway). Returns the table; raises InvalidInput naming the problem.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [str(n) for n in table.column_names]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"column(s) {', '.join(dupes)} appear twice", {"entity_file": ["duplicate columns"]})
    missing_keys = [k for k in target.join_keys if k not in names]
    if missing_keys:
        raise InvalidInput(
            f"the entity rows have no join key column {', '.join(missing_keys)} "
            f"(the features are keyed by {', '.join(target.join_keys)})",
            {"entity_file": [f"missing join key {k}" for k in missing_keys]},
        )
    if TIMESTAMP not in names:
        raise InvalidInput(
            f"the entity rows have no {TIMESTAMP} column: each row needs the time its features are joined as of",
            {"entity_file": [f"missing {TIMESTAMP}"]},
        )
    missing_request = [k for k in target.request_fields if k not in names]
    if missing_request:
        raise InvalidInput(
            f"the entity rows have no request-data column {', '.join(missing_request)} (on-demand features need it)",
            {"entity_file": [f"missing request field {k}" for k in missing_request]},
        )
    clashes = [n for n in names if n in target.contract.columns or n == gateway.ROW_COLUMN]
    if clashes:
        raise InvalidInput(
            f"column(s) {', '.join(clashes)} would clash with the feature columns", {"entity_file": clashes}
        )
    if table.num_rows == 0:
        raise InvalidInput(
            "the entity rows are empty: there is nothing to join features to", {"entity_file": ["0 rows"]}
        )
    if table.num_rows > settings.PORTAL_TRAINING_MAX_ENTITY_ROWS:
        raise InvalidInput(
            f"{table.num_rows:,} entity rows; at most {settings.PORTAL_TRAINING_MAX_ENTITY_ROWS:,} "
            "(PORTAL_TRAINING_MAX_ENTITY_ROWS)",
            {"entity_file": ["too many rows"]},
        )
    for key, dtype in [*target.join_keys.items(), *target.request_fields.items()]:
        column = table[key]
        wanted = arrow_type(dtype)
        if wanted is not None and column.type != wanted:
            try:
                column = pc.cast(column, wanted)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InvalidInput(f"{key} must hold {dtype} values: {exc}", {"entity_file": [key]}) from None
        if column.null_count:
            first = pc.index(pc.is_null(column), True).as_py()
            raise InvalidInput(
                f"{key} is empty in {column.null_count} row(s) (first: row {first + 1})", {"entity_file": [key]}
            )
        table = table.set_column(names.index(key), key, column)
    table = table.set_column(names.index(TIMESTAMP), TIMESTAMP, _timestamps(table[TIMESTAMP]))
    keys = [*target.join_keys, TIMESTAMP]
    if table.num_rows > 1:
        first = (
            table.select(keys)
            .append_column("__i", pa.array(range(table.num_rows), pa.int64()))
            .group_by(keys, use_threads=False)
            .aggregate([("__i", "min")])
        )["__i_min"]
        if len(first) < table.num_rows:
            table = table.take(pc.take(first, pc.sort_indices(first)))
    return table


def _timestamps(column: Any) -> Any:
    """event_timestamp as timestamp[us, UTC]; InvalidInput naming the first value that is not a time."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        out = pc.cast(column, target, safe=False)
    elif pa.types.is_date(column.type):
        out = pc.assume_timezone(pc.cast(column, pa.timestamp("us")), "UTC")
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        raw = column.to_pandas()
        parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
        bad = parsed.isna() & raw.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise InvalidInput(
                f"{TIMESTAMP}: {raw.iloc[row]!r} (row {row + 1}) is not an ISO 8601 date-time",
                {"entity_file": [f"{TIMESTAMP} row {row + 1}"]},
            )
        out = pa.array(parsed, type=target)
    else:
        raise InvalidInput(
            f"{TIMESTAMP} must hold date-times (ISO 8601 text in CSV), not {column.type}",
            {"entity_file": [TIMESTAMP]},
        )
    if out.null_count:
        first = pc.index(pc.is_null(out), True).as_py()
        raise InvalidInput(
            f"{TIMESTAMP} is empty in {out.null_count} row(s) (first: row {first + 1})", {"entity_file": [TIMESTAMP]}
        )
    return out


def parse_entity_timestamps(values: Any, target: DatasetTarget) -> list[datetime]:
    """The `entity_timestamps` input of an entity-less dataset: distinct instants, sorted (InvalidInput else)."""
    if not isinstance(values, list | tuple) or not values:
        raise InvalidInput("give at least one timestamp", {"entity_timestamps": ["a non-empty list"]})
    if len(values) > MAX_TIMESTAMPS:
        raise InvalidInput(f"at most {MAX_TIMESTAMPS} timestamps", {"entity_timestamps": [f"max {MAX_TIMESTAMPS}"]})
    if target.request_fields:
        raise InvalidInput(
            f"on-demand features need request data ({', '.join(target.request_fields)}): upload an entity file",
            {"entity_timestamps": ["request data needed"]},
        )
    if not target.entity_views:
        raise InvalidInput(
            f"no feature view holds every join key ({', '.join(target.join_keys)}): upload an entity file",
            {"entity_timestamps": ["upload an entity file instead"]},
        )
    out = sorted({t for t in (parse_time_input("entity_timestamps", v) for v in values) if t is not None})
    if not out:
        raise InvalidInput("give at least one timestamp", {"entity_timestamps": ["a non-empty list"]})
    return out
