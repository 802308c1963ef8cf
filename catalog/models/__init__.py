"""Catalog models."""

from catalog.models.audit import AuditEvent
from catalog.models.consumers import ModelConsumer
from catalog.models.history import ExpectedChange, ObjectVersion, SyncRun, SyncState
from catalog.models.objects import (
    CatalogObject,
    DataSource,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    LineageEdge,
    ServiceFeature,
)
from catalog.models.projects import Project, Status, Team, TeamAlias
from catalog.models.search import SearchEntry
from catalog.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "AuditEvent",
    "CatalogObject",
    "DataSource",
    "Entity",
    "ExpectedChange",
    "Feature",
    "FeatureService",
    "FeatureView",
    "LineageEdge",
    "ModelConsumer",
    "ObjectVersion",
    "Project",
    "SearchEntry",
    "ServiceFeature",
    "Status",
    "SyncRun",
    "SyncState",
    "Team",
    "TeamAlias",
]
