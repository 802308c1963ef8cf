"""ride_sharing: a richer repo than the demo, covering every object kind the catalog mirrors."""

from datetime import timedelta

import pandas as pd
from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    KafkaSource,
    PushSource,
    RequestSource,
    ValueType,
)
from feast.data_format import JsonFormat
from feast.on_demand_feature_view import on_demand_feature_view
from feast.stream_feature_view import stream_feature_view
from feast.types import Float32, Float64, Int64, String

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    value_type=ValueType.INT64,
    description="A driver.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)
rider = Entity(
    name="rider",
    join_keys=["rider_id"],
    value_type=ValueType.INT64,
    description="A rider.",
    owner="growth@example.com",
    tags={"team": "growth"},
)
city = Entity(
    name="city",
    join_keys=["city"],
    value_type=ValueType.STRING,
    description="A city we operate in.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)

driver_stats = FileSource(
    name="driver_stats",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Hourly driver stats.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)
rider_stats = FileSource(
    name="rider_stats",
    path="data/rider_stats.parquet",
    timestamp_field="event_timestamp",
    description="Rider profile snapshots.",
    owner="growth@example.com",
    tags={"team": "growth"},
)
driver_stats_push = PushSource(
    name="driver_stats_push",
    batch_source=driver_stats,
    description="Pushed driver stats.",
    owner="mobility@example.com",
)
driver_events = KafkaSource(
    name="driver_events",
    kafka_bootstrap_servers="kafka:9092",
    topic="driver-events",
    timestamp_field="event_timestamp",
    batch_source=driver_stats,
    message_format=JsonFormat(schema_json=""),
    watermark_delay_threshold=timedelta(minutes=5),
    description="Driver events stream.",
    owner="mobility@example.com",
)
trip_request = RequestSource(
    name="trip_request",
    schema=[Field(name="distance_km", dtype=Float64), Field(name="surge", dtype=Float64)],
    description="Sent with each pricing request.",
    owner="pricing@example.com",
    tags={"team": "pricing"},
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32, description="Conversion rate."),
        Field(name="acc_rate", dtype=Float32, description="Acceptance rate.", tags={"pii": "false"}),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=driver_stats,
    description="Driver quality signals.",
    owner="mobility@example.com",
    tags={"team": "mobility", "tier": "gold"},
)
driver_city_stats = FeatureView(
    name="driver_city_stats",
    entities=[driver, city],
    ttl=timedelta(days=7),
    schema=[Field(name="trips_in_city", dtype=Int64)],
    source=driver_stats,
    description="Trips per driver and city.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)
driver_realtime = FeatureView(
    name="driver_realtime",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[Field(name="trips_last_hour", dtype=Int64)],
    source=driver_stats_push,
    description="Pushed in real time.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)
rider_profile = FeatureView(
    name="rider_profile",
    entities=[rider],
    ttl=timedelta(days=30),
    schema=[
        Field(name="lifetime_trips", dtype=Int64),
        Field(name="rating", dtype=Float64),
        Field(name="home_city", dtype=String),
    ],
    source=rider_stats,
    description="Who the rider is.",
    owner="growth@example.com",
    tags={"team": "growth"},
)


@stream_feature_view(
    entities=[driver],
    ttl=timedelta(hours=1),
    mode="python",
    source=driver_events,
    schema=[Field(name="events_last_10m", dtype=Int64)],
    timestamp_field="event_timestamp",
    description="Events per driver, streamed.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)
def driver_event_counts(df):  # type: ignore[no-untyped-def]
    return df


@on_demand_feature_view(
    sources=[driver_hourly_stats, trip_request],
    schema=[Field(name="expected_fare", dtype=Float64), Field(name="driver_quality", dtype=Float64)],
    mode="pandas",
    description="Fare estimate at request time.",
    owner="pricing@example.com",
    tags={"team": "pricing"},
)
def trip_pricing(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["expected_fare"] = inputs["distance_km"] * 1.2 * inputs["surge"]
    out["driver_quality"] = (inputs["conv_rate"] + inputs["acc_rate"]) / 2
    return out


driver_ranking_v1 = FeatureService(
    name="driver_ranking_v1",
    features=[driver_hourly_stats[["acc_rate", "conv_rate"]], driver_realtime],
    description="Ranks drivers.",
    owner="mobility@example.com",
    tags={"team": "mobility"},
)
driver_ranking_v2 = FeatureService(
    name="driver_ranking_v2",
    features=[
        rider_profile[["rating"]],
        driver_hourly_stats.with_name("dhs")[["avg_daily_trips", "conv_rate"]],
        trip_pricing,
    ],
    description="Ranks drivers for a rider, with aliased stats.",
    owner="mobility@example.com",
    tags={"team": "mobility", "stage": "staging"},
)
pricing = FeatureService(name="pricing", features=[trip_pricing], owner="pricing@example.com", tags={"team": "pricing"})
