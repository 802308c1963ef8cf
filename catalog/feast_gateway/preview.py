"""The worker side of the online preview, and recovery of views left MATERIALIZING."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from catalog.exceptions import (
    ObjectNotFound,
)
from catalog.feast_gateway.base import (
    RepoRef,
    VectorEntry,
    registry_location,
)
from catalog.feast_gateway.materialize import (
    _is_connection_error,
    _online_error,
    _registry_call,
)
from catalog.feast_gateway.online import (
    OnlineRead,
    _online_result,
    feature_store,
    online_read,
)
from catalog.feast_gateway.protos import (
    dtype_name,
)
from catalog.feast_gateway.registry import (
    sql_registry_error,
)

logger = logging.getLogger(__name__)

# --- Online preview (the worker side of the portal's online preview) ------------------------------


def _feature_refs_vector(store: Any, features: Sequence[str]) -> list[VectorEntry]:
    """The vector for a `features` list (`view:feature`), in the order requested."""
    from feast.errors import FeastObjectNotFoundException

    vector: list[VectorEntry] = []
    for ref in features:
        view_name, _, feature = ref.partition(":")
        fv: Any = None
        for getter in (store.get_feature_view, store.get_on_demand_feature_view, store.get_stream_feature_view):
            try:
                fv = getter(view_name)
                break
            except FeastObjectNotFoundException:  # try the next kind of view
                continue
        if fv is None:
            raise ObjectNotFound(f"feature view {view_name} does not exist")
        dtype = next((dtype_name(f.dtype.to_value_type().value) for f in fv.features if f.name == feature), None)
        if dtype is None:
            raise ObjectNotFound(f"feature view {view_name} has no feature {feature}")
        vector.append(
            VectorEntry(index=len(vector), feature_view=view_name, view_alias="", feature=feature, dtype=dtype)
        )
    return vector


def online_preview(
    repo: RepoRef,
    *,
    entity_rows: list[dict[str, Any]],
    feature_service: str | None = None,
    features: Sequence[str] | None = None,
) -> OnlineRead:
    """Online values for a feature service or a `features` list, each row in canonical order.

    A service is read with `online_read` (the registry's vector order); a features list keeps the order
    it was given in, never the order of Feast's response. Connection failures become
    OnlineStoreUnavailable with a one-line message.
    """
    from feast.feature_view import DUMMY_ENTITY_ID, DUMMY_ENTITY_VAL

    # Feast counts rows by their columns: a row of an entity-less read (nothing to give) gets the
    # placeholder key Feast's __dummy entity uses.
    entity_rows = [row or {DUMMY_ENTITY_ID: DUMMY_ENTITY_VAL} for row in entity_rows]
    try:
        if feature_service:
            return online_read(repo, feature_service=feature_service, entity_rows=entity_rows)
        return _online_read_refs(repo, features=list(features or []), entity_rows=entity_rows)
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if _is_connection_error(exc):
            raise _online_error(repo, exc) from exc
        if isinstance(exc, OperationalError):
            raise sql_registry_error(registry_location(repo), exc) from exc
        raise


def _online_read_refs(repo: RepoRef, *, features: list[str], entity_rows: list[dict[str, Any]]) -> OnlineRead:

    store = _registry_call(repo, feature_store, repo)
    vector = _feature_refs_vector(store, features)
    response = store.get_online_features(features=features, entity_rows=entity_rows, full_feature_names=True)
    return _online_result(response, vector, entity_rows)


def materialization_recover(repo: RepoRef, *, view: str) -> str | None:
    """Move a view left in MATERIALIZING by a dead worker back to a servable state.

    AVAILABLE_ONLINE when earlier intervals are recorded (their values are still online), else
    GENERATED, as Feast's own rollback does. Returns the new state name, None when nothing changed.
    """
    from feast.feature_view import FeatureViewState

    store = _registry_call(repo, feature_store, repo)
    fv = _registry_call(repo, store.registry.get_any_feature_view, view, store.project, allow_cache=False)
    if getattr(fv, "state", None) != FeatureViewState.MATERIALIZING:
        return None
    target = "AVAILABLE_ONLINE" if fv.materialization_intervals else "GENERATED"
    fv.state = FeatureViewState[target]
    _registry_call(repo, store.registry.apply_feature_view, fv, store.project, commit=True)
    return target
