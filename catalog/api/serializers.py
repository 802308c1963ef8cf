"""Output and input serializers of the catalog API (fields listed explicitly; no logic in create/update)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import (
    ApiToken,
    AuditEvent,
    CatalogObject,
    ChangeRequest,
    Feature,
    ModelConsumer,
    ObjectVersion,
    Project,
    ServiceFeature,
)

# Named choice sets for the schema's enums (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
OBJECT_KINDS = CatalogObject.Kind.choices
TOKEN_SCOPES = ApiToken.Scope.choices
# Named choice sets for the OpenAPI schema (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]): fields called
# `change`, `mode` or `status` hold different sets in different places.
VERSION_CHANGES = ObjectVersion.Change.choices
CHANGE_REQUEST_MODES = ChangeRequest.Mode.choices
CHANGE_REQUEST_STATUSES = ChangeRequest.Status.choices


class ProjectSerializer(serializers.ModelSerializer[Project]):
    """A Feast project."""

    class Meta:
        model = Project
        fields = ["name", "description", "owner", "tags", "status", "feast_created_at", "feast_updated_at"]


class ObjectSummarySerializer(serializers.ModelSerializer[CatalogObject]):
    """A catalog object in lists."""

    project = serializers.CharField(source="project.name")
    team = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()
    as_of_version = serializers.SerializerMethodField()

    class Meta:
        model = CatalogObject
        fields = [
            "project",
            "kind",
            "subkind",
            "name",
            "description",
            "owner",
            "team",
            "tags",
            "status",
            "read_error",
            "version",
            "as_of_version",
            "feature_count",
            "feast_created_at",
            "feast_updated_at",
            "updated_at",
            "url",
            "html_url",
        ]

    def get_team(self, obj: CatalogObject) -> str | None:
        return obj.team.name if obj.team else None

    def get_url(self, obj: CatalogObject) -> str:
        return obj.get_api_url()

    def get_html_url(self, obj: CatalogObject) -> str:
        return obj.get_absolute_url()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_as_of_version(self, obj: CatalogObject) -> int | None:
        """With ?as_of=: the version current at that time (else null)."""
        return getattr(obj, "as_of_version", None)


class FeatureSerializer(serializers.ModelSerializer[Feature]):
    """A field of a feature view."""

    project = serializers.CharField(source="view.project.name")
    view = serializers.CharField(source="view.name")

    class Meta:
        model = Feature
        fields = ["project", "view", "name", "dtype", "description", "tags", "position", "status", "vector_search"]


class VectorEntrySerializer(serializers.ModelSerializer[ServiceFeature]):
    """Position `index` of a feature service's vector."""

    feature_view = serializers.CharField(source="view_name")
    feature = serializers.CharField(source="feature_name")
    reference = serializers.CharField(help_text="`view:feature` as Feast serves it (alias if any).")

    class Meta:
        model = ServiceFeature
        fields = ["index", "feature_view", "feature", "dtype", "view_alias", "reference"]


class ObjectDetailSerializer(ObjectSummarySerializer):
    """A catalog object with every kind-specific field; `vector` for services, `features` for views."""

    features = serializers.SerializerMethodField()
    vector = serializers.SerializerMethodField()

    class Meta(ObjectSummarySerializer.Meta):
        fields = [
            *ObjectSummarySerializer.Meta.fields,
            "content_hash",
            "join_keys",
            "value_type",
            "location",
            "timestamp_field",
            "entity_names",
            "ttl_seconds",
            "batch_source_name",
            "stream_source_name",
            "online",
            "enabled",
            "feast_state",
            "materialization_intervals",
            "last_materialized_end",
            "removed_at",
            "features",
            "vector",
            "spec",
        ]

    @extend_schema_field(FeatureSerializer(many=True, allow_null=True))
    def get_features(self, obj: CatalogObject) -> list[dict[str, Any]] | None:
        """Feature views: their features in declared order (null for other kinds)."""
        if obj.kind != CatalogObject.Kind.FEATURE_VIEW:
            return None
        features = [f for f in obj.features.all()]
        for f in features:
            f.view = obj
        return list(FeatureSerializer(features, many=True).data)

    @extend_schema_field(VectorEntrySerializer(many=True, allow_null=True))
    def get_vector(self, obj: CatalogObject) -> list[dict[str, Any]] | None:
        """Feature services: the ordered vector a model reads (null for other kinds)."""
        if obj.kind != CatalogObject.Kind.FEATURE_SERVICE:
            return None
        return list(VectorEntrySerializer(obj.vector.all(), many=True).data)


class DiffEntrySerializer(serializers.Serializer[dict[str, Any]]):
    """One field-level difference."""

    path = serializers.CharField(required=False)
    change = serializers.CharField(required=False)
    before = serializers.JSONField(required=False, allow_null=True)
    after = serializers.JSONField(required=False, allow_null=True)


class ObjectVersionSerializer(serializers.ModelSerializer[ObjectVersion]):
    """One recorded version of an object (history lists leave out the snapshot)."""

    sync_run = serializers.IntegerField(source="sync_run_id", allow_null=True)
    changes = DiffEntrySerializer(
        many=True, read_only=True, help_text="Field-level changes versus the previous version."
    )

    class Meta:
        model = ObjectVersion
        fields = ["version", "change", "content_hash", "changes", "out_of_band", "recorded_at", "sync_run"]


class ObjectVersionDetailSerializer(ObjectVersionSerializer):
    """One version with the spec it recorded."""

    class Meta(ObjectVersionSerializer.Meta):
        fields = [*ObjectVersionSerializer.Meta.fields, "snapshot"]


class DiffSerializer(serializers.Serializer[dict[str, Any]]):
    """Differences between two versions of an object."""

    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    changes = DiffEntrySerializer(many=True)


class LineageNodeSerializer(serializers.Serializer[dict[str, Any]]):
    """A lineage node (focus flags only with ?focus=)."""

    id = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=[k for k in CatalogObject.Kind.values if k != CatalogObject.Kind.PERMISSION] + ["model"]
    )
    subkind = serializers.CharField(allow_blank=True)
    name = serializers.CharField()
    project = serializers.CharField()
    status = serializers.CharField()
    url = serializers.CharField(allow_blank=True)
    column = serializers.IntegerField(min_value=0, max_value=4)
    is_focus = serializers.BooleanField(required=False)
    upstream_of_focus = serializers.BooleanField(required=False)
    downstream_of_focus = serializers.BooleanField(required=False)


class LineageEdgeSerializer(serializers.Serializer[dict[str, Any]]):
    """A directed edge upstream → downstream."""

    source = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.source
    target = serializers.CharField()
    kind = serializers.CharField()


class LineageGraphSerializer(serializers.Serializer[dict[str, Any]]):
    """A project's lineage graph."""

    nodes = LineageNodeSerializer(many=True)
    edges = LineageEdgeSerializer(many=True)


class ModelConsumerSerializer(serializers.ModelSerializer[ModelConsumer]):
    """A model registered against a feature service."""

    project = serializers.CharField(source="service.project.name")
    service = serializers.CharField(source="service.name")
    team = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelConsumer
        fields = [
            "id",
            "project",
            "service",
            "name",
            "version",
            "owner",
            "team",
            "link",
            "description",
            "contract_hash",
            "created_by",
            "created_at",
            "html_url",
        ]

    def get_team(self, obj: ModelConsumer) -> str | None:
        return obj.team.name if obj.team else None

    def get_created_by(self, obj: ModelConsumer) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    def get_html_url(self, obj: ModelConsumer) -> str:
        return obj.get_absolute_url()


class ModelConsumerInputSerializer(serializers.Serializer[dict[str, Any]]):
    """Register a model: the service by project and name."""

    project = serializers.CharField(max_length=255)
    service = serializers.CharField(max_length=255, help_text="Feature service name.")
    name = serializers.CharField(max_length=255)
    version = serializers.CharField(max_length=64, default="1")
    owner = serializers.CharField(max_length=255, help_text="An email or alias, or a team name.")
    link = serializers.URLField(max_length=1000, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    contract_hash = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    """A token as listed: never its secret."""

    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "is_active",
        ]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    """A new token: `token` is shown this once and never again."""

    token = serializers.CharField(help_text="The secret token. Store it now: it cannot be shown again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenInputSerializer(serializers.Serializer[dict[str, Any]]):
    """Create a token."""

    # Stored as sent: a trimmed name could pass max_length that the sent one fails (the schema's promise).
    name = serializers.CharField(max_length=100, trim_whitespace=False)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices), min_length=1, default=["read"]
    )
    expires_in_days = serializers.IntegerField(min_value=1, max_value=366, required=False, allow_null=True)


class MeSerializer(serializers.Serializer[dict[str, Any]]):
    """Who the request authenticates as."""

    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    teams = serializers.ListField(child=serializers.CharField())
    auth = serializers.ChoiceField(choices=["session", "token"])
    token_scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)


class ErrorBodySerializer(serializers.Serializer[dict[str, Any]]):
    """The body of every error."""

    status = serializers.IntegerField()
    code = serializers.CharField(help_text="invalid, not_authenticated, permission_denied, not_found, conflict, ...")
    message = serializers.CharField()
    details = serializers.DictField(help_text="Field or parameter name → messages; retry_after for 429.")


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """`{"error": {...}}`: the one error shape of the API."""

    error = ErrorBodySerializer()


class SearchHitSerializer(serializers.Serializer[Any]):
    """One ranked search result (features carry their view in `parent`)."""

    kind = serializers.ChoiceField(choices=["entity", "data_source", "feature_view", "feature_service", "feature"])
    subkind = serializers.CharField(allow_blank=True)
    project = serializers.CharField()
    name = serializers.CharField()
    parent = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.parent
        allow_blank=True, help_text="For features: their feature view."
    )
    reference = serializers.CharField(help_text="`view:feature` for features, the name otherwise.")
    description = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_blank=True)
    team = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    dtype = serializers.CharField(allow_blank=True)
    score = serializers.FloatField()
    url = serializers.CharField(help_text="The HTML page.")


class FacetValueSerializer(serializers.Serializer[Any]):
    """A facet value and how many matches carry it."""

    value = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class SearchResultsSerializer(serializers.Serializer[Any]):
    """A page of ranked hits (the browser's ranking), the total and facet counts over all matches."""

    q = serializers.CharField()
    corrected = serializers.CharField(
        allow_blank=True, help_text="The query run instead, when the typed one matched nothing."
    )
    total = serializers.IntegerField(
        help_text="Exact when `total_exact`; otherwise an estimate (2 significant figures)."
    )
    total_exact = serializers.BooleanField(help_text="False above 2,000 matches: `total` and `pages` are estimated.")
    facets_exact = serializers.BooleanField(help_text="False when facet counts come from a sample of the matches.")
    sample_rate = serializers.IntegerField(
        help_text="The estimates counted 1 in this many matches (0: nothing was estimated)."
    )
    has_next = serializers.BooleanField(help_text="Whether another page exists (exact even when `pages` is estimated).")
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    page_size = serializers.IntegerField()
    results = SearchHitSerializer(many=True)
    facets = serializers.DictField(child=FacetValueSerializer(many=True))


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    """One audit event (append-only)."""

    actor = serializers.CharField(source="actor_name")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "request_id",
            "job_run_id",
        ]
