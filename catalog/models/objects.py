"""The mirrored registry objects: one table keyed by (project, kind, name), typed proxies per kind."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.urls import reverse

from catalog.models.base import TimestampedModel
from catalog.models.projects import Project, Status, Team
from catalog.querysets import CatalogObjectQuerySet


class CatalogObject(TimestampedModel):
    """A Feast registry object (entity, data source, feature view or feature service).

    `spec` holds the object's user-defined content as JSON and `content_hash` its digest; the typed
    columns are denormalised from it for filtering, search and pages.
    """

    class Kind(models.TextChoices):
        ENTITY = "entity", "Entity"
        DATA_SOURCE = "data_source", "Data source"
        FEATURE_VIEW = "feature_view", "Feature view"
        FEATURE_SERVICE = "feature_service", "Feature service"
        # Read from the registry and shown; not governed by change requests (uploads leave them as they are).
        SAVED_DATASET = "saved_dataset", "Saved dataset"
        VALIDATION_REFERENCE = "validation_reference", "Validation reference"
        PERMISSION = "permission", "Permission"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="catalog_objects")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=255)
    # batch / stream / on_demand for views; file / push / request / kafka ... for sources
    subkind = models.CharField(max_length=32, blank=True)
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=255, blank=True, db_index=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="catalog_objects")
    tags = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    spec = models.JSONField(default=dict)
    content_hash = models.CharField(max_length=64)
    read_error = models.TextField(
        blank=True,
        help_text="Why the portal cannot read the registry's current proto of this object (empty when it can). "
        "The catalog keeps what it last read; an object never read has no spec.",
    )
    version = models.PositiveIntegerField(default=1, help_text="Portal version number (bumped per content change).")
    derived_version = models.PositiveSmallIntegerField(
        default=0,
        help_text="The version of the sync's derivation (features, vector, lineage rows) these rows were built with; "
        "rows built by an older one are rebuilt once by the next sync, with no new version.",
    )
    feast_created_at = models.DateTimeField(null=True, blank=True)
    feast_updated_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # Entities
    join_keys = models.JSONField(default=list, blank=True)
    value_type = models.CharField(max_length=64, blank=True)
    # Data sources
    location = models.TextField(blank=True)
    timestamp_field = models.CharField(max_length=255, blank=True)
    # Feature views
    entity_names = models.JSONField(default=list, blank=True)
    ttl_seconds = models.BigIntegerField(null=True, blank=True)
    batch_source_name = models.CharField(max_length=255, blank=True)
    stream_source_name = models.CharField(max_length=255, blank=True)
    online = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    feast_state = models.CharField(max_length=64, blank=True)
    feast_version_number = models.IntegerField(null=True, blank=True)
    materialization_intervals = models.JSONField(default=list, blank=True)
    last_materialized_end = models.DateTimeField(null=True, blank=True)
    feature_count = models.PositiveIntegerField(default=0)

    objects = CatalogObjectQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "kind", "name"], name="catalog_object_natural_key"),
        ]
        indexes = [
            models.Index(fields=["kind", "status"]),
            models.Index(fields=["project", "kind", "status"]),
        ]
        ordering = ["project__name", "kind", "name"]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}" if self._state.fields_cache.get("project") else self.name

    @property
    def is_removed(self) -> bool:
        """True when the object is no longer in the registry."""
        return self.status == Status.REMOVED

    @property
    def kind_slug(self) -> str:
        """The URL segment of this object's kind (feature-views, ...)."""
        return KIND_SLUG[self.kind]

    def get_absolute_url(self) -> str:
        return reverse("catalog:object_detail", args=[self.project.name, self.kind_slug, self.name])

    def get_api_url(self) -> str:
        """The object's URL in the REST API (/api/v1/projects/<project>/<kind>/<name>/)."""
        return reverse(f"catalog_api:{self.kind}_detail", args=[self.project.name, self.name])


# The kinds change requests govern; the others are read from the registry and shown only.
GOVERNED_KINDS = frozenset(
    {
        CatalogObject.Kind.ENTITY,
        CatalogObject.Kind.DATA_SOURCE,
        CatalogObject.Kind.FEATURE_VIEW,
        CatalogObject.Kind.FEATURE_SERVICE,
    }
)

KIND_SLUG: dict[str, str] = {
    CatalogObject.Kind.ENTITY: "entities",
    CatalogObject.Kind.DATA_SOURCE: "data-sources",
    CatalogObject.Kind.FEATURE_VIEW: "feature-views",
    CatalogObject.Kind.FEATURE_SERVICE: "feature-services",
    CatalogObject.Kind.SAVED_DATASET: "saved-datasets",
    CatalogObject.Kind.VALIDATION_REFERENCE: "validation-references",
    CatalogObject.Kind.PERMISSION: "permissions",
}


class _KindManager(models.Manager["CatalogObject"]):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def get_queryset(self) -> CatalogObjectQuerySet:
        return CatalogObjectQuerySet(self.model, using=self._db).filter(kind=self.kind)

    def visible_to(self, user: Any) -> CatalogObjectQuerySet:
        """Objects of this kind the user may see."""
        return self.get_queryset().visible_to(user)


def _kind_manager(kind: str) -> _KindManager:
    return _KindManager(kind)


class Entity(CatalogObject):
    """A Feast entity (join keys, value type)."""

    objects = _kind_manager(CatalogObject.Kind.ENTITY)  # type: ignore[misc,assignment]

    class Meta:
        proxy = True
        verbose_name_plural = "entities"


class DataSource(CatalogObject):
    """A Feast data source (file, push, request, stream ...)."""

    objects = _kind_manager(CatalogObject.Kind.DATA_SOURCE)  # type: ignore[misc,assignment]

    class Meta:
        proxy = True


class FeatureView(CatalogObject):
    """A Feast feature view: batch, stream or on-demand."""

    objects = _kind_manager(CatalogObject.Kind.FEATURE_VIEW)  # type: ignore[misc,assignment]

    class Meta:
        proxy = True


class FeatureService(CatalogObject):
    """A Feast feature service: the ordered vector a model consumes."""

    objects = _kind_manager(CatalogObject.Kind.FEATURE_SERVICE)  # type: ignore[misc,assignment]

    class Meta:
        proxy = True


class Feature(models.Model):
    """A field of a feature view, at its declared position."""

    view = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="features")
    name = models.CharField(max_length=255)
    dtype = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    # Feast's vector-search settings of the field ({"index": true, "length": 384, "search_metric": "COSINE"}), or {}.
    vector_search = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["view", "name"], name="catalog_feature_unique_name")]
        ordering = ["view_id", "position"]

    def __str__(self) -> str:
        return self.name


class ServiceFeature(models.Model):
    """Position `index` of a feature service's vector: the canonical order a model reads."""

    service = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="vector")
    index = models.PositiveIntegerField()
    view_name = models.CharField(max_length=255)
    view_alias = models.CharField(max_length=255, blank=True)
    feature_name = models.CharField(max_length=255)
    dtype = models.CharField(max_length=64)
    view = models.ForeignKey(
        CatalogObject, null=True, blank=True, on_delete=models.SET_NULL, related_name="service_uses"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "index"], name="catalog_vector_unique_index")]
        ordering = ["service_id", "index"]

    def __str__(self) -> str:
        return f"{self.index}: {self.reference}"

    @property
    def reference(self) -> str:
        """`view:feature` as Feast references it online (alias when the projection has one)."""
        return f"{self.view_alias or self.view_name}:{self.feature_name}"


class LineageEdge(models.Model):
    """A directed dependency between two catalog objects (upstream → downstream)."""

    class Kind(models.TextChoices):
        SOURCE_VIEW = "source_view", "source → view"
        SOURCE_SOURCE = "source_source", "batch source → push/stream source"
        ENTITY_VIEW = "entity_view", "entity → view"
        VIEW_VIEW = "view_view", "view → on-demand view"
        REQUEST_VIEW = "request_view", "request source → on-demand view"
        VIEW_SERVICE = "view_service", "view → service"
        VIEW_DATASET = "view_dataset", "view → saved dataset"
        SERVICE_DATASET = "service_dataset", "service → saved dataset"
        DATASET_REFERENCE = "dataset_reference", "saved dataset → validation reference"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="edges")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    upstream = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="downstream_edges")
    downstream = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="upstream_edges")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upstream", "downstream", "kind"], name="catalog_edge_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.upstream_id} → {self.downstream_id} ({self.kind})"
