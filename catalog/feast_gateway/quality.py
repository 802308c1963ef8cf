"""Offline/online skew and feature statistics."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from catalog.exceptions import (
    InvalidInput,
)
from catalog.feast_gateway.base import (
    RepoRef,
)
from catalog.feast_gateway.materialize import (
    MATERIALIZE_FILTER_TAG,
    _local_parquet_path,
    _materializable_views,
    _pull_latest,
    _registry_call,
    materialize_filter_columns,
    parse_materialize_filter,
)
from catalog.feast_gateway.online import (
    feature_store,
)
from catalog.feast_gateway.preview import (
    online_preview,
)
from catalog.feast_gateway.protos import (
    dtype_name,
)

logger = logging.getLogger(__name__)

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

    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, UUID) or isinstance(b, UUID):  # a Uuid feature: a UUID online, its text offline
        return str(a) == str(b)
    if isinstance(a, datetime) and isinstance(b, datetime):
        # a list of timestamps comes back offline without its zone (UTC): compare instants
        return _utc(a) == _utc(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) != isinstance(b, str) and isinstance(a, dict | list) != isinstance(b, dict | list):
        # a Json feature: Feast reads it parsed online and as the source's JSON text offline
        text, parsed = (a, b) if isinstance(a, str) else (b, a)
        try:
            return bool(json.loads(text) == parsed)
        except ValueError:
            return False
    return bool(a == b)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(value: Any) -> Any:
    """A value as plain Python, whichever side it comes from (numpy scalars and arrays, NaN/NaT as None)."""
    if hasattr(value, "tolist"):  # numpy scalars and arrays (array features read offline)
        value = value.tolist()
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

    store = _registry_call(repo, feature_store, repo)
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
    if not join_keys:  # an entity-less view: its one (dummy) entity, when it has a row
        return _skew_entity_less(store, repo, fv, view=view, as_of=as_of, present=latest.num_rows > 0)
    keys = latest.select(join_keys).sort_by([(k, "ascending") for k in join_keys])
    if keys.num_rows > sample:
        import random

        picked = sorted(random.Random(seed).sample(range(keys.num_rows), sample))
        keys = keys.take(pc.cast(picked, "int64"))
    rows = keys.to_pylist()
    # a stream view lists its entity columns among its features (as Feast stores it): keys, not values
    refs = [f"{fv.name}:{f.name}" for f in fv.features if f.name not in join_keys]
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


def _skew_entity_less(store: Any, repo: RepoRef, fv: Any, *, view: str, as_of: datetime, present: bool) -> SkewReport:
    """skew_check of a view without entities: one entity row, no key (Feast's __dummy entity)."""
    import pandas as pd

    refs = [f"{fv.name}:{f.name}" for f in fv.features]
    if not present:
        return SkewReport(view=view, as_of=as_of, sampled=[], features=[SkewFeature(r, 0, 0, 0, []) for r in refs])
    offline = store.get_historical_features(
        entity_df=pd.DataFrame({"event_timestamp": [pd.Timestamp(as_of)]}), features=refs
    ).to_df()
    online = online_preview(repo, entity_rows=[{}], features=refs)
    out: list[SkewFeature] = []
    for position, ref in enumerate(refs):
        offline_value = _plain(offline.iloc[0][ref.split(":", 1)[1]]) if len(offline) else None
        cell = online.rows[0][position]
        online_value = None if cell.status == "NOT_FOUND" else _plain(cell.value)
        missing = int(cell.status == "NOT_FOUND" and offline_value is not None)
        same = _same(online_value, offline_value)
        examples: list[dict[str, Any]] = []
        if not same:
            examples.append({"entity": {}, "online": online_value, "offline": offline_value, "status": cell.status})
        out.append(SkewFeature(ref, 1, int(not same), missing, examples))
    return SkewReport(view=view, as_of=as_of, sampled=[{}], features=out)


def online_write_rows(repo: RepoRef, *, view: str, rows: list[dict[str, Any]]) -> None:
    """Write rows (join keys, features, event_timestamp) straight to the online store, as a push would.

    Used to repair or, in tests, to plant a known skew.
    """
    import pandas as pd

    store = _registry_call(repo, feature_store, repo)
    store.write_to_online_store(view, pd.DataFrame(rows))


# --- Feature statistics ------------------------------------------------------------------------------


def _countable(column: Any) -> Any:
    """A column Arrow can count distinct values of: nested values (Map, Struct, arrays) as JSON text, bytes
    as hex (Arrow's unique and value_counts take neither)."""
    import json

    import pyarrow as pa

    if pa.types.is_nested(column.type):
        is_map = pa.types.is_map(column.type)
        values = [
            None if v is None else json.dumps(dict(v) if is_map else v, sort_keys=True, default=str)
            for v in column.to_pylist()
        ]
        return pa.array(values, pa.string())
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())
    return column


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

    store = _registry_call(repo, feature_store, repo)
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
        column = _countable(table[name])
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
