"""Materialization per view, in time chunks, with batched online writes and the filter grammar."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from catalog.exceptions import (
    InvalidInput,
    ObjectNotFound,
    PortalError,
)
from catalog.feast_gateway.base import (
    RepoRef,
    raw_config,
    registry_location,
)
from catalog.feast_gateway.online import (
    feature_store,
)
from catalog.feast_gateway.registry import (
    sql_registry_error,
)

logger = logging.getLogger(__name__)

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
    store_type = str(raw_config(repo).get("online_store", {}).get("type", "online store"))
    return OnlineStoreUnavailable(f"Feast online store ({store_type}) is unreachable: {first_line}")


def _is_connection_error(exc: Exception) -> bool:
    import redis

    return isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | ConnectionError)


def _registry_call(location_repo: RepoRef, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from sqlalchemy.exc import OperationalError

    try:
        return fn(*args, **kwargs)
    except OperationalError as exc:
        raise sql_registry_error(registry_location(location_repo), exc) from exc


def _materializable_views(repo: RepoRef, views: Sequence[str] | None) -> list[Any]:
    """Batch and stream feature views Feast would materialize (online, enabled), registry order."""
    from feast.errors import FeatureViewNotFoundException
    from feast.on_demand_feature_view import OnDemandFeatureView

    store = _registry_call(repo, feature_store, repo)
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
    if table.num_rows < 2:
        return table
    order = [(k, "ascending") for k in join_keys] + [(ts_col, "ascending")]
    if created_col:
        order.append((created_col, "ascending"))
    table = table.sort_by(order)
    if not join_keys:  # an entity-less view has one entity (Feast's __dummy): its latest row
        return table.slice(table.num_rows - 1)
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
    store = _registry_call(repo, feature_store, repo)
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


def _with_dummy_entity(table: Any, join_key_types: dict[str, Any]) -> Any:
    """An entity-less view's rows with Feast's placeholder key column (`__dummy_id` = ""), as Feast's
    offline stores add it: the online key of such a view."""
    import pyarrow as pa
    from feast.feature_view import DUMMY_ENTITY_ID, DUMMY_ENTITY_VAL

    if DUMMY_ENTITY_ID not in join_key_types or DUMMY_ENTITY_ID in table.column_names:
        return table
    return table.append_column(DUMMY_ENTITY_ID, pa.array([DUMMY_ENTITY_VAL] * table.num_rows, type=pa.string()))


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

    store = _registry_call(repo, feature_store, repo)
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
            table = _with_dummy_entity(table, join_key_types)
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
