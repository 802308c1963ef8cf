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
    _raw_config,
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


def _store(repo: RepoRef) -> Any:
    """A FeatureStore for the repo, built from its YAML alone (no definition code is imported)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    with _stores_lock:
        if repo.key not in _stores:
            raw = _raw_config(repo)
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

    store = _store(repo)
    service = store.get_feature_service(feature_service, allow_cache=False)
    info = _feature_service(service.to_proto(), store.project)
    response = store.get_online_features(features=service, entity_rows=entity_rows, full_feature_names=True)
    return _online_result(response, info.vector, entity_rows)


def _online_result(response: Any, vector: list[VectorEntry], entity_rows: list[dict[str, Any]]) -> OnlineRead:
    """Feast's online response, reordered by the vector (the registry's declared order)."""
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus
    from feast.type_map import feast_value_type_to_python_type

    names = list(response.proto.metadata.feature_names.val)
    position = {name: i for i, name in enumerate(names)}
    rows: list[list[OnlineValue]] = []
    for r in range(len(entity_rows)):
        row: list[OnlineValue] = []
        for entry in vector:
            result = response.proto.results[position[f"{entry.view_alias or entry.feature_view}__{entry.feature}"]]
            ts = result.event_timestamps[r] if r < len(result.event_timestamps) else None
            status = FieldStatus.Name(result.statuses[r])
            if status == "PRESENT" and result.values[r].WhichOneof("val") is None and not (ts and ts.seconds):
                # Feast 0.67's Redis store answers PRESENT with an empty value and no timestamp for a key
                # it does not hold; that is "not found", not a present null.
                status = "NOT_FOUND"
            row.append(
                OnlineValue(
                    index=entry.index,
                    feature_view=entry.feature_view,
                    feature=entry.feature,
                    reference=entry.reference,
                    dtype=entry.dtype,
                    value=feast_value_type_to_python_type(result.values[r]),
                    status=status,
                    event_timestamp=(
                        datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=UTC) if ts and ts.seconds else None
                    ),
                )
            )
        rows.append(row)
    return OnlineRead(vector=vector, entity_rows=entity_rows, rows=rows, response_order=names)
