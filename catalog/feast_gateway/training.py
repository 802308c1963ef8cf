"""Training datasets: Feast's point-in-time join, the entity set at given times, saved datasets.

The portal never reimplements the point-in-time join: `historical_features` calls Feast's
`get_historical_features` (full feature names), then only restores the entity rows' order and keeps
the columns in the order asked for (the contract's), dropping what Feast adds on its own (the inputs
of on-demand views). Feast's semantics therefore hold exactly: a row gets, per view, the latest value
with `entity_ts - ttl <= value_ts <= entity_ts` (a value stamped after the row never joins; one older
than the TTL is null).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog.exceptions import InvalidInput, ObjectNotFound
from catalog.feast_gateway.base import RepoRef, VectorEntry
from catalog.feast_gateway.materialize import _local_parquet_path, _registry_call
from catalog.feast_gateway.online import feature_store
from catalog.feast_gateway.protos import _feature_service, dtype_from_enum_name, dtype_name

logger = logging.getLogger(__name__)

ROW_COLUMN = "__portal_row"  # carried through Feast's join to restore the entity rows' order
_FOUND_ROW = "__portal_found_row"  # a row of Feast's result, joined back onto the entity rows


# --- The vector of a stored spec (no Feast import) ---------------------------------------------------


def _dtype_from_enum(value: Any) -> str:
    """A ValueType given as registry JSON gives it (an enum name, or a number) → Feast's type name."""
    if isinstance(value, int):
        return dtype_name(value)
    return dtype_from_enum_name(str(value or "INVALID"))


def vector_from_spec(spec: dict[str, Any]) -> list[VectorEntry]:
    """A feature service's vector from its spec JSON (a catalog version snapshot), as the sync reads it
    from the proto: projections in declared order, each projection's selected columns in its order."""
    vector: list[VectorEntry] = []
    for projection in spec.get("features") or []:
        view = str(projection.get("feature_view_name", ""))
        alias = str(projection.get("feature_view_name_alias", "") or "")
        for column in projection.get("feature_columns") or []:
            vector.append(
                VectorEntry(
                    index=len(vector),
                    feature_view=view,
                    view_alias=alias,
                    feature=str(column.get("name", "")),
                    dtype=_dtype_from_enum(column.get("value_type")),
                )
            )
    return vector


# --- Reading the registry ------------------------------------------------------------------------------


def service_vector(repo: RepoRef, *, feature_service: str) -> list[VectorEntry]:
    """The service's vector as the registry holds it now (not the catalog's copy)."""
    from feast.errors import FeatureServiceNotFoundException

    store = _registry_call(repo, feature_store, repo)
    try:
        service = _registry_call(repo, store.get_feature_service, feature_service, allow_cache=False)
    except FeatureServiceNotFoundException:
        raise ObjectNotFound(f"feature service {feature_service} is not in the registry") from None
    return _feature_service(service.to_proto(), store.project).vector


# --- The point-in-time join ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalGroup:
    """One projection of the request, retrieved with its own Feast call.

    `refs` name the real view (`view:feature`); Feast's columns `view__feature` become `columns`
    (`<alias or view>__feature`). `keys` are the entity columns Feast deduplicates that view's rows on
    (its join keys, through the projection's join_key_map); `extra` the request-data columns an
    on-demand view reads. `key_map` renames entity columns to the view's join keys for the call.
    """

    refs: list[str]
    columns: list[str]
    feast_columns: list[str]
    keys: list[str]
    extra: list[str]
    key_map: dict[str, str]


def _feature_view(store: Any, name: str) -> Any:
    """A batch or stream feature view by name (Feast's get_feature_view knows only batch views)."""
    from feast.errors import FeatureViewNotFoundException

    try:
        return store.get_feature_view(name)
    except FeatureViewNotFoundException:
        return store.get_stream_feature_view(name)


def _view_keys(fv: Any, join_key_map: dict[str, str]) -> list[str]:
    """The entity-row columns a view joins on; none for an entity-less view (Feast adds its __dummy_id)."""
    from feast.feature_view import DUMMY_ENTITY_ID

    return [join_key_map.get(c.name, c.name) for c in fv.entity_columns if c.name != DUMMY_ENTITY_ID]


def retrieval_groups(
    store: Any, *, feature_service: str | None, features: Sequence[str] | None
) -> list[RetrievalGroup]:
    """The request split by projection (a service's declared projections, or a feature list by view)."""
    from feast.errors import FeastObjectNotFoundException

    odfvs = {v.name: v for v in store.list_on_demand_feature_views(allow_cache=False)}
    projections: list[tuple[str, str, list[str], dict[str, str]]] = []  # (view, alias, features, join_key_map)
    if feature_service:
        service = store.get_feature_service(feature_service, allow_cache=False)
        for projection in service.feature_view_projections:
            projections.append(
                (
                    projection.name,
                    projection.name_alias or "",
                    [f.name for f in projection.features],
                    dict(projection.join_key_map or {}),
                )
            )
    else:
        by_view: dict[str, list[str]] = {}
        for ref in features or []:
            view, _, feature = ref.partition(":")
            by_view.setdefault(view, []).append(feature)
        projections = [(view, "", names, {}) for view, names in by_view.items()]
    groups: list[RetrievalGroup] = []
    for view, alias, names, key_map in projections:
        if view in odfvs:
            odfv = odfvs[view]
            keys: list[str] = []
            for source in odfv.source_feature_view_projections.values():
                try:
                    source_fv = _feature_view(store, source.name)
                except FeastObjectNotFoundException:  # an on-demand view reading another on-demand view
                    continue
                keys += [k for k in _view_keys(source_fv, dict(source.join_key_map or {})) if k not in keys]
            extra = sorted(odfv.get_request_data_schema())
        else:
            keys = _view_keys(_feature_view(store, view), key_map)
            extra = []
        groups.append(
            RetrievalGroup(
                refs=[f"{view}:{n}" for n in names],
                columns=[f"{alias or view}__{n}" for n in names],
                feast_columns=[f"{view}__{n}" for n in names],
                keys=keys,
                extra=extra,
                key_map={entity_col: view_key for view_key, entity_col in key_map.items()},
            )
        )
    return groups


def historical_features(
    repo: RepoRef,
    *,
    entity_table: Any,
    columns: Sequence[str],
    feature_service: str | None = None,
    features: Sequence[str] | None = None,
) -> Any:
    """Feast's `get_historical_features` for the entity rows, as a pyarrow Table.

    Columns: the entity table's own (join keys, event_timestamp, request data, labels ...) in their
    order, then `columns` (full feature names, `<alias or view>__feature`) in the order given. Rows:
    exactly the entity rows, in their order.

    Feast 0.67's file offline store drops an entity row outright when its entity has rows in a view but
    none within [event_timestamp - ttl, event_timestamp] (`_filter_ttl` removes every candidate, and the
    row with them), instead of returning nulls; in a one-call retrieval that row then loses the other
    views' values too. So each projection is retrieved by its own call, on the distinct
    (join keys, event_timestamp) rows of that view -- Feast deduplicates on exactly those -- and joined
    back onto every entity row: a row Feast dropped gets nulls for that view only, and labels and other
    columns are never lost. Feast's own point-in-time semantics are unchanged (latest value with
    `ts - ttl <= value time <= ts`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    store = _registry_call(repo, feature_store, repo)
    _registry_call(repo, store.refresh_registry)
    groups = _registry_call(repo, retrieval_groups, store, feature_service=feature_service, features=features)
    produced = {c for g in groups for c in g.columns}
    missing = [c for c in columns if c not in produced]
    if missing:
        raise InvalidInput(f"the registry no longer serves {', '.join(missing)} for this request")
    n = entity_table.num_rows
    base = entity_table.append_column(ROW_COLUMN, pa.array(range(n), type=pa.int64()))
    values: dict[str, Any] = {}
    for group in groups:
        key_cols = [*group.keys, "event_timestamp", *group.extra]
        missing_keys = [k for k in key_cols if k not in base.column_names]
        if missing_keys:
            raise InvalidInput(f"the entity rows have no column {', '.join(missing_keys)} ({group.refs[0]} needs it)")
        distinct = base.select(key_cols).group_by(key_cols, use_threads=False).aggregate([])
        frames = _rounds(distinct, [*group.keys, "event_timestamp"]) if group.extra else [distinct]
        parts = []
        for part in frames:
            frame = part.to_pandas().rename(columns=group.key_map)
            job = _registry_call(
                repo, store.get_historical_features, entity_df=frame, features=group.refs, full_feature_names=True
            )
            result = job.to_arrow()
            result = result.rename_columns(
                [{v: k for k, v in group.key_map.items()}.get(c, c) for c in result.column_names]
            )
            cast = [
                pc.cast(result[c], part.schema.field(c).type)
                if result[c].type != part.schema.field(c).type
                else result[c]
                for c in key_cols
            ]
            parts.append(
                pa.table(
                    [*cast, *[result[c] for c in group.feast_columns]],
                    names=[*key_cols, *group.columns],
                )
            )
        found = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        # Arrow joins only carry scalar columns: join the keys to Feast's row numbers, then take the values
        # (structs, maps, lists, all-null columns) by number; a row Feast did not return takes a null.
        found_rows = found.select(key_cols).append_column(_FOUND_ROW, pa.array(range(found.num_rows), pa.int64()))
        joined = base.select([*key_cols, ROW_COLUMN]).join(found_rows, keys=key_cols, join_type="left outer")
        joined = joined.take(pc.sort_indices(joined[ROW_COLUMN]))
        if joined.num_rows != n:
            raise InvalidInput(f"Feast returned {joined.num_rows} rows for {n} entity rows ({group.refs[0]})")
        for column in group.columns:
            values[column] = found[column].take(joined[_FOUND_ROW])
    return pa.table(
        [*entity_table.columns, *[values[c] for c in columns]], names=[*entity_table.column_names, *columns]
    )


def _rounds(table: Any, unique_on: list[str]) -> list[Any]:
    """Split rows so that each part holds each `unique_on` combination once (Feast keeps one row per
    join keys + time; rows differing only in request data must go in separate calls)."""
    import pyarrow.compute as pc

    frame = table.select(unique_on).to_pandas()
    rank = frame.groupby(unique_on, sort=False, dropna=False).cumcount().to_numpy()
    if rank.max(initial=0) == 0:
        return [table]
    return [table.filter(pc.equal(rank, r)) for r in range(int(rank.max()) + 1)]


# --- Every entity with a value at given times ------------------------------------------------------------


def entity_keys_at(repo: RepoRef, *, views: Sequence[str], timestamps: Sequence[datetime]) -> Any:
    """The entity rows "every entity at these times": for each timestamp t, each distinct entity key
    holding a row in one of `views` with `t - ttl <= event time <= t` (TTL 0: any time up to t) --
    exactly the entities the join can give a value. A pyarrow Table of join keys + event_timestamp."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    from feast.utils import _get_column_names

    store = _registry_call(repo, feature_store, repo)
    _registry_call(repo, store.refresh_registry)
    stamps = sorted({t.astimezone(UTC) for t in timestamps})
    if not stamps:
        raise InvalidInput("give at least one timestamp", {"entity_timestamps": ["at least one timestamp"]})
    parts: list[Any] = []
    keys: list[str] | None = None
    for name in views:
        fv = _registry_call(repo, _feature_view, store, name)
        entities = [store.get_entity(e) for e in fv.entities if e != "__dummy"]
        join_keys, _features, ts_col, _created = _get_column_names(fv, entities)
        if keys is None:
            keys = sorted(join_keys)
        elif sorted(join_keys) != keys:
            raise InvalidInput(f"{name} has other join keys ({', '.join(join_keys)}) than {', '.join(keys)}")
        ttl = fv.ttl if fv.ttl and fv.ttl.total_seconds() > 0 else None
        low = stamps[0] - ttl if ttl else datetime(1970, 1, 1, tzinfo=UTC)
        path = _local_parquet_path(store, fv.batch_source)
        if path is not None:
            dataset = pads.dataset(path, format="parquet")
            ts_type = dataset.schema.field(ts_col).type
            bounds = [low, stamps[-1]]
            if getattr(ts_type, "tz", None) is None:
                bounds = [b.replace(tzinfo=None) for b in bounds]
            lo, hi = (pa.scalar(b, type=ts_type) for b in bounds)
            table = dataset.to_table(
                columns=[*join_keys, ts_col], filter=(pads.field(ts_col) >= lo) & (pads.field(ts_col) <= hi)
            )
        else:
            table = (
                store._get_provider()
                .offline_store.pull_all_from_table_or_query(
                    config=store.config,
                    data_source=fv.batch_source,
                    join_key_columns=join_keys,
                    feature_name_columns=[],
                    timestamp_field=ts_col,
                    start_date=low,
                    end_date=stamps[-1],
                )
                .to_arrow()
                .select([*join_keys, ts_col])
            )
        ts = pc.cast(table[ts_col], pa.timestamp("us", tz="UTC")) if table.num_rows else None
        for t in stamps:
            if ts is None:
                break
            upper = pa.scalar(t, type=pa.timestamp("us", tz="UTC"))
            mask = pc.less_equal(ts, upper)
            if ttl:
                mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(t - ttl, type=pa.timestamp("us", tz="UTC"))))
            distinct = table.filter(mask).select(join_keys).group_by(join_keys).aggregate([])
            parts.append(
                distinct.select(sorted(join_keys)).append_column(
                    "event_timestamp", pa.array([t] * distinct.num_rows, type=pa.timestamp("us", tz="UTC"))
                )
            )
    if not parts:
        return pa.table({**{k: pa.array([], pa.int64()) for k in keys or []}, "event_timestamp": []})
    merged = pa.concat_tables(parts, promote_options="permissive")
    unique = merged.group_by(merged.column_names).aggregate([])
    return unique.sort_by([("event_timestamp", "ascending"), *[(k, "ascending") for k in keys or []]])


# --- Feast saved datasets ------------------------------------------------------------------------------


def saved_dataset_register(
    repo: RepoRef,
    *,
    name: str,
    features: Sequence[str],
    join_keys: Sequence[str],
    uri: str,
    s3_endpoint_override: str | None,
    feature_service: str | None,
    tags: dict[str, str],
    min_event_timestamp: datetime | None,
    max_event_timestamp: datetime | None,
    description: str = "",
) -> str:
    """Register the written parquet as a Feast saved dataset, where the offline store can read it back.

    Feast's file (dask) offline store reads a saved dataset from a parquet path (local or s3://), so
    the portal's own file is registered as it is (Feast's `create_saved_dataset` would run the whole
    retrieval a second time). Returns "" on success, else why it was not registered.
    """
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.offline_stores.file_source import SavedDatasetFileStorage
    from feast.saved_dataset import SavedDataset

    store = _registry_call(repo, feature_store, repo)
    if not isinstance(store.config.offline_store, DaskOfflineStoreConfig):
        kind = getattr(store.config.offline_store, "type", "this")
        return f"the {kind} offline store keeps saved datasets in its own tables; the portal's parquet is not one"
    if "://" in uri and not uri.startswith(("s3://", "file://")):
        return f"Feast's file offline store cannot read {uri.split('://', 1)[0]}:// paths"
    if uri.startswith("s3://") and importlib.util.find_spec("s3fs") is None:
        return "Feast's file offline store reads s3:// through s3fs (dask), which is not installed"
    dataset = SavedDataset(
        name=name,
        features=list(features),
        join_keys=list(join_keys),
        storage=SavedDatasetFileStorage(path=uri.removeprefix("file://"), s3_endpoint_override=s3_endpoint_override),
        full_feature_names=True,
        tags=tags,
        feature_service_name=feature_service,
        description=description,
    )
    dataset.min_event_timestamp = min_event_timestamp
    dataset.max_event_timestamp = max_event_timestamp
    _registry_call(repo, store.registry.apply_saved_dataset, dataset, store.project, commit=True)
    return ""


def saved_dataset_get(repo: RepoRef, *, name: str) -> dict[str, Any] | None:
    """A saved dataset as the registry holds it (name, features, join keys, storage path), None if absent."""
    from feast.errors import SavedDatasetNotFound

    store = _registry_call(repo, feature_store, repo)
    try:
        ds = _registry_call(repo, store.registry.get_saved_dataset, name, store.project, allow_cache=False)
    except SavedDatasetNotFound:
        return None
    return {
        "name": ds.name,
        "features": list(ds.features),
        "join_keys": list(ds.join_keys),
        "full_feature_names": ds.full_feature_names,
        "feature_service": ds.feature_service_name,
        "path": ds.storage.file_options.uri if hasattr(ds.storage, "file_options") else "",
        "tags": dict(ds.tags),
    }


def saved_dataset_delete(repo: RepoRef, *, name: str) -> bool:
    """Remove a saved dataset from the registry; False when it was not there."""
    from feast.errors import SavedDatasetNotFound

    store = _registry_call(repo, feature_store, repo)
    try:
        _registry_call(repo, store.registry.delete_saved_dataset, name, store.project, commit=True)
    except SavedDatasetNotFound:
        return False
    return True
