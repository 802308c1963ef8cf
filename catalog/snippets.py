"""Copyable code for fetching a feature view's or a feature service's values (Python SDK, feature server, API)."""

from __future__ import annotations

import json
from typing import Any

from catalog.models import CatalogObject, ServiceFeature

_EXAMPLE_KEYS = {"STRING": '"abc"', "BYTES": '"abc"'}


def _entity_rows(obj: CatalogObject) -> dict[str, Any]:
    """Example entity keys for the object's entities: {join_key: [example]}."""
    if obj.kind == CatalogObject.Kind.FEATURE_SERVICE:
        groups = CatalogObject.objects.filter(
            pk__in=ServiceFeature.objects.filter(service=obj).values("view_id")
        ).values_list("entity_names", flat=True)
        entity_names = sorted({e for group in groups for e in group})
    else:
        entity_names = list(obj.entity_names)
    rows: dict[str, Any] = {}
    for join_keys, value_type in CatalogObject.objects.filter(
        project_id=obj.project_id, kind=CatalogObject.Kind.ENTITY, name__in=entity_names
    ).values_list("join_keys", "value_type"):
        for key in join_keys:
            rows[key] = ["abc"] if value_type.upper() in _EXAMPLE_KEYS else [101]
    return rows


def fetch_snippets(obj: CatalogObject, *, base_url: str) -> dict[str, str]:
    """`python`, `feature_server` (curl) and `api` (curl) snippets for a view or a service."""
    entities = _entity_rows(obj)
    first_row = {k: v[0] for k, v in entities.items()}
    if obj.kind == CatalogObject.Kind.FEATURE_SERVICE:
        order = [f"{v.view_alias or v.view_name}__{v.feature_name}" for v in obj.vector.all()]
        select = f'store.get_feature_service("{obj.name}")'
        body: dict[str, Any] = {"feature_service": obj.name, "entities": entities}
        api = base_url.rstrip("/") + obj.get_api_url()
    else:
        features = [f for f in obj.features.all() if f.status == "active"]
        order = [f"{obj.name}__{f.name}" for f in features]
        select = "[\n" + "".join(f'        "{obj.name}:{f.name}",\n' for f in features) + "    ]"
        body = {"features": [f"{obj.name}:{f.name}" for f in features], "entities": entities}
        api = base_url.rstrip("/") + obj.get_api_url()
    order_lines = "".join(f'    "{name}",\n' for name in order)
    python = (
        "from feast import FeatureStore\n\n"
        'store = FeatureStore(repo_path="feature_repo")\n'
        f"response = store.get_online_features(\n    features={select},\n"
        f"    entity_rows=[{json.dumps(first_row)}],\n    full_feature_names=True,\n).to_dict()\n\n"
        "# Feast 0.67 returns features within a view in string-hash order (it changes with PYTHONHASHSEED).\n"
        "# Build the model's vector in the registry's declared order instead:\n"
        f"ORDER = [\n{order_lines}]\n"
        "vector = [response[name][0] for name in ORDER]\n"
    )
    feature_server = (
        "curl -s http://feast-feature-server:6566/get-online-features \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{json.dumps(body)}'"
    )
    api_curl = f'curl -s -H "Authorization: Bearer $PORTAL_TOKEN" {api}'
    return {"python": python, "feature_server": feature_server, "api": api_curl}
