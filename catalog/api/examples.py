"""OpenAPI examples for the catalog endpoints (shown in /api/v1/docs/)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

_VIEW = {
    "project": "employee_attrition",
    "kind": "feature_view",
    "subkind": "batch",
    "name": "employee_features",
    "description": "Core attrition signals per employee, refreshed monthly by HR.",
    "owner": "people-analytics@example.com",
    "team": "people-analytics",
    "tags": {"team": "people-analytics", "domain": "people"},
    "status": "active",
    "version": 1,
    "as_of_version": None,
    "feature_count": 6,
    "feast_created_at": "2026-11-20T08:00:00Z",
    "feast_updated_at": "2026-11-20T08:00:00Z",
    "updated_at": "2026-11-20T08:01:00Z",
    "url": "/api/v1/projects/employee_attrition/feature-views/employee_features/",
    "html_url": "/projects/employee_attrition/feature-views/employee_features/",
}

PROJECT_LIST = OpenApiExample(
    "Projects",
    value={
        "next": None,
        "previous": None,
        "results": [{"name": "employee_attrition", "description": "", "owner": "", "tags": {}, "status": "active"}],
    },
    response_only=True,
)

OBJECT_LIST = OpenApiExample(
    "A page of feature views",
    summary="GET /api/v1/feature-views/?owner=people-analytics@example.com&tag=domain:people",
    value={
        "next": "http://portal/api/v1/feature-views/?cursor=cD1lbXBsb3llZQ%3D%3D",
        "previous": None,
        "results": [_VIEW],
    },
    response_only=True,
)

VIEW_DETAIL = OpenApiExample(
    "A feature view",
    value={
        **_VIEW,
        "entity_names": ["employee_id"],
        "ttl_seconds": 604800,
        "batch_source_name": "employee_attrition",
        "online": True,
        "features": [
            {
                "project": "employee_attrition",
                "view": "employee_features",
                "name": "tenure",
                "dtype": "Float32",
                "description": "Years since hire.",
                "tags": {},
                "position": 0,
                "status": "active",
            }
        ],
        "vector": None,
    },
    response_only=True,
)

SERVICE_DETAIL = OpenApiExample(
    "A feature service and its vector",
    value={
        **_VIEW,
        "kind": "feature_service",
        "subkind": "",
        "name": "attrition_model_v2",
        "url": "/api/v1/projects/employee_attrition/feature-services/attrition_model_v2/",
        "html_url": "/projects/employee_attrition/feature-services/attrition_model_v2/",
        "features": None,
        "vector": [
            {
                "index": 0,
                "feature_view": "employee_features",
                "feature": "overall_satisfaction",
                "dtype": "Float32",
                "view_alias": "",
                "reference": "employee_features:overall_satisfaction",
            },
            {
                "index": 1,
                "feature_view": "employee_features",
                "feature": "tenure",
                "dtype": "Float32",
                "view_alias": "",
                "reference": "employee_features:tenure",
            },
        ],
    },
    response_only=True,
)

FEATURE_LIST = OpenApiExample(
    "Features of one view",
    summary="GET /api/v1/projects/employee_attrition/features/?view=employee_features",
    value={
        "next": None,
        "previous": None,
        "results": [VIEW_DETAIL.value["features"][0]],
    },
    response_only=True,
)

HISTORY = OpenApiExample(
    "Versions of a view",
    value={
        "next": None,
        "previous": None,
        "results": [
            {
                "version": 2,
                "change": "changed",
                "content_hash": "9f2c...",
                "changes": [{"path": "ttl", "change": "changed", "before": "3888000s", "after": "2592000s"}],
                "out_of_band": True,
                "recorded_at": "2026-11-21T09:00:00Z",
                "sync_run": 12,
            }
        ],
    },
    response_only=True,
)

DIFF = OpenApiExample(
    "A TTL change",
    value={
        "from_version": 1,
        "to_version": 2,
        "changes": [{"path": "ttl", "change": "changed", "before": "3888000s", "after": "2592000s"}],
    },
    response_only=True,
)

LINEAGE = OpenApiExample(
    "A small graph",
    value={
        "nodes": [
            {
                "id": "data_source:employee_attrition/employee_attrition",
                "kind": "data_source",
                "subkind": "file",
                "name": "employee_attrition",
                "project": "employee_attrition",
                "status": "active",
                "url": "/projects/employee_attrition/data-sources/employee_attrition/",
                "column": 0,
            },
            {
                "id": "feature_view:employee_attrition/employee_features",
                "kind": "feature_view",
                "subkind": "batch",
                "name": "employee_features",
                "project": "employee_attrition",
                "status": "active",
                "url": "/projects/employee_attrition/feature-views/employee_features/",
                "column": 1,
            },
        ],
        "edges": [
            {
                "source": "data_source:employee_attrition/employee_attrition",
                "target": "feature_view:employee_attrition/employee_features",
                "kind": "source_view",
            }
        ],
    },
    response_only=True,
)

_MODEL = {
    "id": 7,
    "project": "employee_attrition",
    "service": "attrition_model_v2",
    "name": "churn-xgb",
    "version": "3",
    "owner": "people-analytics",
    "team": "people-analytics",
    "link": "https://models.example.com/churn-xgb",
    "description": "Monthly attrition risk score.",
    "contract_hash": "",
    "created_by": "paul",
    "created_at": "2026-11-21T10:00:00Z",
    "html_url": "/models/7/",
}

MODEL_LIST = OpenApiExample(
    "Registered models", value={"next": None, "previous": None, "results": [_MODEL]}, response_only=True
)

MODEL_CREATE = OpenApiExample(
    "Register churn-xgb@3",
    value={
        "project": "employee_attrition",
        "service": "attrition_model_v2",
        "name": "churn-xgb",
        "version": "3",
        "owner": "people-analytics",
        "link": "https://models.example.com/churn-xgb",
    },
    request_only=True,
)

TOKEN_CREATE = OpenApiExample(
    "A read-only CI token for 30 days",
    value={"name": "ci-pipeline", "scopes": ["read"], "expires_in_days": 30},
    request_only=True,
)

ME = OpenApiExample(
    "A token of a proposer",
    value={
        "username": "paul",
        "roles": ["proposer", "viewer"],
        "teams": ["people-analytics"],
        "auth": "token",
        "token_scopes": ["read", "propose"],
    },
    response_only=True,
)

SEARCH = OpenApiExample(
    "Search for tenure",
    summary="GET /api/v1/search/?q=tenure&kind=feature",
    value={
        "q": "tenure",
        "corrected": "",
        "total": 1,
        "page": 1,
        "pages": 1,
        "page_size": 20,
        "results": [
            {
                "kind": "feature",
                "subkind": "",
                "project": "employee_attrition",
                "name": "tenure",
                "parent": "employee_features",
                "reference": "employee_features:tenure",
                "description": "Years since hire.",
                "owner": "people-analytics@example.com",
                "team": "people-analytics",
                "status": "active",
                "dtype": "Float32",
                "score": 1.0,
                "url": "/projects/employee_attrition/feature-views/employee_features/features/tenure/",
            }
        ],
        "facets": {"kind": [{"value": "feature", "count": 1}]},
    },
    response_only=True,
)

AUDIT = OpenApiExample(
    "A model registration",
    summary="GET /api/v1/audit/?action_prefix=model_consumer.",
    value={
        "next": None,
        "previous": None,
        "results": [
            {
                "id": 41,
                "created_at": "2026-11-21T10:00:00Z",
                "actor": "paul",
                "action": "model_consumer.registered",
                "object_type": "modelconsumer",
                "object_id": "7",
                "object_repr": "churn-xgb@3",
                "before": None,
                "after": {"service": "employee_attrition/attrition_model_v2", "name": "churn-xgb", "version": "3"},
                "request_id": "",
                "job_run_id": None,
            }
        ],
    },
    response_only=True,
)

PROJECT = OpenApiExample(
    "A project",
    value={"name": "employee_attrition", "description": "", "owner": "", "tags": {}, "status": "active"},
    response_only=True,
)

ENTITY_DETAIL = OpenApiExample(
    "An entity",
    value={
        **_VIEW,
        "kind": "entity",
        "subkind": "",
        "name": "employee_id",
        "description": "An employee.",
        "join_keys": ["employee_id"],
        "value_type": "Int64",
        "features": None,
        "vector": None,
        "url": "/api/v1/projects/employee_attrition/entities/employee_id/",
        "html_url": "/projects/employee_attrition/entities/employee_id/",
    },
    response_only=True,
)

SAVED_DATASET_DETAIL = OpenApiExample(
    "A saved dataset",
    value={
        **_VIEW,
        "kind": "saved_dataset",
        "subkind": "file",
        "name": "attrition_training_2026_11",
        "description": "Training rows for attrition-clf@3.",
        "location": "/var/lib/portal/datasets/attrition_training_2026_11.parquet",
        "features": None,
        "vector": None,
        "url": "/api/v1/projects/employee_attrition/saved-datasets/attrition_training_2026_11/",
        "html_url": "/projects/employee_attrition/saved-datasets/attrition_training_2026_11/",
    },
    response_only=True,
)

VALIDATION_REFERENCE_DETAIL = OpenApiExample(
    "A validation reference",
    value={
        **_VIEW,
        "kind": "validation_reference",
        "subkind": "",
        "name": "attrition_reference",
        "description": "Expected ranges of the training set.",
        "features": None,
        "vector": None,
        "url": "/api/v1/projects/employee_attrition/validation-references/attrition_reference/",
        "html_url": "/projects/employee_attrition/validation-references/attrition_reference/",
    },
    response_only=True,
)

PERMISSION_DETAIL = OpenApiExample(
    "A permission",
    value={
        **_VIEW,
        "kind": "permission",
        "subkind": "role_based",
        "name": "read_only_views",
        "description": "",
        "features": None,
        "vector": None,
        "url": "/api/v1/projects/employee_attrition/permissions/read_only_views/",
        "html_url": "/projects/employee_attrition/permissions/read_only_views/",
    },
    response_only=True,
)

SOURCE_DETAIL = OpenApiExample(
    "A data source",
    value={
        **_VIEW,
        "kind": "data_source",
        "subkind": "file",
        "name": "employee_attrition",
        "location": "data/employee_attrition.parquet",
        "timestamp_field": "event_timestamp",
        "features": None,
        "vector": None,
        "url": "/api/v1/projects/employee_attrition/data-sources/employee_attrition/",
        "html_url": "/projects/employee_attrition/data-sources/employee_attrition/",
    },
    response_only=True,
)

VERSION = OpenApiExample(
    "Version 1 with its spec",
    value={
        **HISTORY.value["results"][0],
        "version": 1,
        "change": "added",
        "changes": [],
        "out_of_band": False,
        "snapshot": {"name": "department_features", "ttl": "3888000s", "entities": ["department_id"]},
    },
    response_only=True,
)

MODEL = OpenApiExample("A registered model", value=_MODEL, response_only=True)

TOKEN_LIST = OpenApiExample(
    "Your tokens",
    value={
        "next": None,
        "previous": None,
        "results": [
            {
                "id": 3,
                "name": "ci-pipeline",
                "prefix": "9f86d081",
                "scopes": ["read"],
                "created_at": "2026-11-21T10:00:00Z",
                "expires_at": "2026-12-21T10:00:00Z",
                "revoked_at": None,
                "last_used_at": "2026-11-22T07:13:00Z",
                "is_active": True,
            }
        ],
    },
    response_only=True,
)

TOKEN_CREATED = OpenApiExample(
    "The new token (shown once)",
    value={**TOKEN_LIST.value["results"][0], "last_used_at": None, "token": "fpt_9f86d081_Jx3...secret"},
    response_only=True,
    status_codes=["201"],
)
