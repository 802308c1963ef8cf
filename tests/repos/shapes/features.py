"""shapes: the constructs real Feast repos use most, in the shapes they use them (tests/corpus).

- `platform_daily`: a view without entities (Feast's __dummy entity), owned through its `org` alone;
- `user_inferred`: a view without a schema (Feast infers it at apply), and `inferred_service` over it;
- `user_profile`: every value type (Map, Json, Struct, arrays, bool, bytes, unix timestamps), ttl 0
  ("no expiry"), an `org` beside its team tag;
- `user_media`: the value types Feast 0.67 added (PdfBytes, ImageBytes, Uuid, Decimal) and lists of
  bool, bytes, unix timestamps, Int32 and Float32, and `media_service` over it;
- `user_clicks`: a stream view, and `clicks_service` over it;
- services over each, one mixing an entity-less view with a keyed one.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, KafkaSource
from feast.data_format import JsonFormat
from feast.stream_feature_view import stream_feature_view
from feast.types import (
    Array,
    Bool,
    Bytes,
    Decimal,
    Float32,
    Float64,
    ImageBytes,
    Int32,
    Int64,
    Json,
    Map,
    PdfBytes,
    String,
    Struct,
    UnixTimestamp,
    Uuid,
)

user = Entity(name="user", join_keys=["user_id"], description="A user.", owner="growth@example.com")

user_source = FileSource(
    name="user_source",
    path="data/users.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
activity_source = FileSource(name="activity_source", path="data/activity.parquet", timestamp_field="event_timestamp")
platform_source = FileSource(name="platform_source", path="data/platform.parquet", timestamp_field="event_timestamp")
media_source = FileSource(name="media_source", path="data/media.parquet", timestamp_field="event_timestamp")
click_batch = FileSource(name="click_batch", path="data/clicks.parquet", timestamp_field="event_timestamp")
click_stream = KafkaSource(
    name="click_stream",
    kafka_bootstrap_servers="kafka:9092",
    topic="clicks",
    timestamp_field="event_timestamp",
    batch_source=click_batch,
    message_format=JsonFormat(schema_json=""),
)

user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    ttl=timedelta(0),  # Feast: 0 means the values never expire
    schema=[
        Field(name="score", dtype=Float64),
        Field(name="ratio", dtype=Float32),
        Field(name="visits", dtype=Int64),
        Field(name="level", dtype=Int32),
        Field(name="active", dtype=Bool),
        Field(name="nickname", dtype=String, description="Null for some users."),
        Field(name="avatar", dtype=Bytes),
        Field(name="last_seen", dtype=UnixTimestamp),
        Field(name="prefs", dtype=Map),
        Field(name="settings", dtype=Json),
        Field(name="address", dtype=Struct({"city": String, "zip": String})),
        Field(name="labels", dtype=Array(String)),
        Field(name="recent_scores", dtype=Array(Float64)),
        Field(name="recent_visits", dtype=Array(Int64)),
    ],
    source=user_source,
    owner="growth@example.com",
    org="growth",
    tags={"team": "growth"},
)

platform_daily = FeatureView(
    name="platform_daily",
    entities=[],
    ttl=timedelta(days=2),
    schema=[Field(name="active_users", dtype=Int64), Field(name="error_rate", dtype=Float64)],
    source=platform_source,
    description="Platform-wide numbers: no entity.",
    org="platform",  # owned through its org alone: no owner, no team tag
)

user_media = FeatureView(
    name="user_media",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[
        Field(name="resume", dtype=PdfBytes),
        Field(name="photo", dtype=ImageBytes),
        Field(name="device", dtype=Uuid),
        Field(name="balance", dtype=Decimal),
        Field(name="flags", dtype=Array(Bool)),
        Field(name="blobs", dtype=Array(Bytes)),
        Field(name="logins", dtype=Array(UnixTimestamp)),
        Field(name="levels", dtype=Array(Int32)),
        Field(name="weights", dtype=Array(Float32)),
    ],
    source=media_source,
    owner="growth@example.com",
    tags={"team": "growth"},
)

user_inferred = FeatureView(
    name="user_inferred",
    entities=[user],
    ttl=timedelta(days=30),
    source=activity_source,
    description="No schema: Feast infers the features from the source at apply.",
)


@stream_feature_view(
    entities=[user],
    ttl=timedelta(days=1),
    mode="python",
    source=click_stream,
    schema=[Field(name="clicks", dtype=Int64)],
    timestamp_field="event_timestamp",
)
def user_clicks(df):  # type: ignore[no-untyped-def]
    return df


profile_service = FeatureService(name="profile_service", features=[user_profile])
platform_service = FeatureService(name="platform_service", features=[platform_daily])
inferred_service = FeatureService(name="inferred_service", features=[user_inferred])
mixed_service = FeatureService(
    name="mixed_service", features=[user_profile[["visits", "active"]], platform_daily[["error_rate"]]]
)
clicks_service = FeatureService(name="clicks_service", features=[user_clicks])
media_service = FeatureService(name="media_service", features=[user_media])
