"""Tiny parquet files for the rich test repo (feast apply validates that sources exist)."""

import sys
from pathlib import Path

import pandas as pd

out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "data")
out.mkdir(parents=True, exist_ok=True)
ts = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=19)  # never a fixed date: Feast reads the clock
pd.DataFrame(
    {
        "driver_id": [1, 2],
        "event_timestamp": [ts, ts],
        "created": [ts, ts],
        "conv_rate": [0.5, 0.7],
        "acc_rate": [0.9, 0.8],
        "avg_daily_trips": [10, 12],
        "city": ["paris", "lyon"],
        "trips_in_city": [3, 4],
        "trips_last_hour": [1, 2],
    }
).to_parquet(out / "driver_stats.parquet")
pd.DataFrame(
    {
        "rider_id": [7, 8],
        "event_timestamp": [ts, ts],
        "lifetime_trips": [3, 40],
        "rating": [4.5, 4.9],
        "home_city": ["paris", "lyon"],
    }
).to_parquet(out / "rider_stats.parquet")
