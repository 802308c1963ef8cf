"""Catalog models."""

from catalog.models.audit import AuditEvent
from catalog.models.consumers import ModelConsumer
from catalog.models.governance import (
    SEVERITY_ORDER,
    Approval,
    ChangeRequest,
    ChangeRequestComment,
    ChangeRequestObject,
    Severity,
)
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
from catalog.models.projects import Compatibility, Project, Status, Team, TeamAlias
from catalog.models.search import SearchEntry
from catalog.models.tokens import ApiToken, LoginFailure

__all__ = [
    "SEVERITY_ORDER",
    "ApiToken",
    "Approval",
    "AuditEvent",
    "CatalogObject",
    "ChangeRequest",
    "ChangeRequestComment",
    "ChangeRequestObject",
    "Compatibility",
    "DataSource",
    "Entity",
    "ExpectedChange",
    "Feature",
    "FeatureService",
    "FeatureView",
    "LineageEdge",
    "LoginFailure",
    "ModelConsumer",
    "ObjectVersion",
    "Project",
    "SearchEntry",
    "ServiceFeature",
    "Severity",
    "Status",
    "SyncRun",
    "SyncState",
    "Team",
    "TeamAlias",
]
