"""The online store: reads reordered by the registry's declared order."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog.exceptions import (
    FeastConfigInvalid,
)
from catalog.feast_gateway.base import (
    RepoRef,
    VectorEntry,
    raw_config,
)
from catalog.feast_gateway.protos import (
    _feature_service,
)

logger = logging.getLogger(__name__)

# --- Online store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineValue:
    """One feature value of one entity row, at its canonical index."""

    index: int
    feature_view: str
    feature: str
    reference: str
    dtype: str
    value: Any
    status: str  # PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE
    event_timestamp: datetime | None


@dataclass(frozen=True)
class OnlineRead:
    """Online values per entity row, each row ordered by the registry's declared vector order."""

    vector: list[VectorEntry]
    entity_rows: list[dict[str, Any]]
    rows: list[list[OnlineValue]]
    response_order: list[str]  # the order Feast returned (string-hash order within a view: never trust it)


_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def feature_store(repo: RepoRef) -> Any:
    """A FeatureStore for the repo, built from its YAML alone (no definition code is imported)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    with _stores_lock:
        if repo.key not in _stores:
            raw = raw_config(repo)
            try:
                config = RepoConfig(**raw)
            except Exception as exc:  # pydantic's ValidationError and Feast's config errors
                raise FeastConfigInvalid(f"{repo.yaml_path} is not a valid Feast configuration: {exc}") from exc
            config.repo_path = repo.path
            _stores[repo.key] = FeatureStore(config=config, repo_path=str(repo.path))
        return _stores[repo.key]


def reset_stores() -> None:
    """Forget cached FeatureStores (tests; after the registry location changes)."""
    with _stores_lock:
        _stores.clear()


def online_read(repo: RepoRef, *, feature_service: str, entity_rows: list[dict[str, Any]]) -> OnlineRead:
    """Read a feature service's vector online for each entity row, reordered by the registry's order.

    Feast 0.67 returns features within a view in string-hash order (`defaultdict(set)` in
    feast/utils.py::_group_feature_refs), which changes with PYTHONHASHSEED. The vector order comes
    from the registry's declared projections instead.
    """

    store = feature_store(repo)
    # The service from the same cached registry snapshot get_online_features reads its views from (Feast
    # refreshes it every cache_ttl_seconds): no registry round trip per read, and service and views agree.
    service = store.get_feature_service(feature_service, allow_cache=True)
    info = _feature_service(service.to_proto(), store.project)
    response = store.get_online_features(features=service, entity_rows=entity_rows, full_feature_names=True)
    return _online_result(response, info.vector, entity_rows)


def _online_result(response: Any, vector: list[VectorEntry], entity_rows: list[dict[str, Any]]) -> OnlineRead:
    """Feast's online response, reordered by the vector (the registry's declared order)."""
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus
    from feast.type_map import feast_value_type_to_python_type

    names = list(response.proto.metadata.feature_names.val)
    position = {name: i for i, name in enumerate(names)}
    status_names = {number: FieldStatus.Name(number) for number in FieldStatus.values()}
    stamps: dict[tuple[int, int], datetime] = {}  # rows of one view share event timestamps: convert each once
    count = len(entity_rows)
    # Column by column: each protobuf repeated field is read once, not once per cell.
    columns: list[list[OnlineValue]] = []
    for entry in vector:
        result = response.proto.results[position[f"{entry.view_alias or entry.feature_view}__{entry.feature}"]]
        values = list(result.values)
        statuses = list(result.statuses)
        timestamps = list(result.event_timestamps)
        column: list[OnlineValue] = []
        for r in range(count):
            ts = timestamps[r] if r < len(timestamps) else None
            seconds = ts.seconds if ts is not None else 0
            status = status_names[statuses[r]]
            value = values[r]
            if status == "PRESENT" and not seconds and value.WhichOneof("val") is None:
                # Feast 0.67's Redis store answers PRESENT with an empty value and no timestamp for a key
                # it does not hold; that is "not found", not a present null.
                status = "NOT_FOUND"
            event_timestamp = None
            if seconds and ts is not None:
                key = (seconds, ts.nanos)
                event_timestamp = stamps.get(key)
                if event_timestamp is None:
                    event_timestamp = stamps[key] = datetime.fromtimestamp(seconds + ts.nanos / 1e9, tz=UTC)
            column.append(
                OnlineValue(
                    index=entry.index,
                    feature_view=entry.feature_view,
                    feature=entry.feature,
                    reference=entry.reference,
                    dtype=entry.dtype,
                    value=feast_value_type_to_python_type(value),
                    status=status,
                    event_timestamp=event_timestamp,
                )
            )
        columns.append(column)
    rows = [[column[r] for column in columns] for r in range(count)]
    return OnlineRead(vector=vector, entity_rows=entity_rows, rows=rows, response_order=names)
