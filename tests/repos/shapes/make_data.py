"""Tiny parquet files for the shapes repo, stamped relative to END (never a calendar date: Feast reads
the clock). Usage: make_data.py OUT_DIR END_ISO8601."""

import decimal
import json
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

out = Path(sys.argv[1])
end = pd.Timestamp(datetime.fromisoformat(sys.argv[2]))
out.mkdir(parents=True, exist_ok=True)

# Two snapshots per user: the latest inside every window the tests use, an older one before it.
users = []
for uid in (1, 2, 3):
    for age_hours, version in ((50, 0), (5, 1)):
        ts = end - timedelta(hours=age_hours + uid)
        users.append(
            {
                "user_id": uid,
                "event_timestamp": ts,
                "created": ts,
                "score": 0.5 * uid + version,
                "ratio": 0.25 * uid,
                "visits": 10 * uid + version,
                "level": uid,
                "active": uid % 2 == 1,
                "nickname": None if uid == 2 else f"user{uid}v{version}",
                "avatar": bytes([uid, version, 255]),
                "last_seen": ts - timedelta(minutes=uid),
                "prefs": {"theme": "dark" if uid == 1 else "light", "lang": "en"},
                "settings": json.dumps({"beta": uid == 1, "limits": [uid, version]}),
                "address": {"city": f"city{uid}", "zip": f"{uid:05d}"},
                "labels": [f"l{uid}", f"v{version}"],
                "recent_scores": [0.1 * uid, 0.2 * version],
                "recent_visits": [uid, version, 7],
            }
        )
schema = pa.schema(
    [
        ("user_id", pa.int64()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("created", pa.timestamp("us", tz="UTC")),
        ("score", pa.float64()),
        ("ratio", pa.float32()),
        ("visits", pa.int64()),
        ("level", pa.int32()),
        ("active", pa.bool_()),
        ("nickname", pa.string()),
        ("avatar", pa.binary()),
        ("last_seen", pa.timestamp("us", tz="UTC")),
        # a Map feature is stored as pandas writes dicts (a struct column), as Feast's own template does:
        # Feast's materialization rejects Arrow map columns
        ("prefs", pa.struct([("theme", pa.string()), ("lang", pa.string())])),
        ("settings", pa.string()),
        ("address", pa.struct([("city", pa.string()), ("zip", pa.string())])),
        ("labels", pa.list_(pa.string())),
        ("recent_scores", pa.list_(pa.float64())),
        ("recent_visits", pa.list_(pa.int64())),
    ]
)
pq.write_table(pa.Table.from_pylist(users, schema=schema), out / "users.parquet")

pd.DataFrame(
    {
        "user_id": [1, 2, 3, 1],
        "event_timestamp": [end - timedelta(hours=h) for h in (4, 8, 12, 60)],
        "sessions": [3, 5, 8, 1],
        "spend": [12.5, 0.0, 99.9, 1.0],
        "country": ["fr", None, "de", "fr"],
        "is_premium": [True, False, True, False],
    }
).to_parquet(out / "activity.parquet")
pd.DataFrame(
    {
        "event_timestamp": [end - timedelta(hours=30), end - timedelta(hours=6)],
        "active_users": [120, 135],
        "error_rate": [0.02, 0.01],
    }
).to_parquet(out / "platform.parquet")
pd.DataFrame({"user_id": [1, 2], "event_timestamp": [end - timedelta(hours=3)] * 2, "clicks": [4, 9]}).to_parquet(
    out / "clicks.parquet"
)

# The newer value types: documents and images as bytes, a UUID, an exact decimal, lists of the scalars.
media = []
for uid in (1, 2, 3):
    ts = end - timedelta(hours=6 + uid)
    media.append(
        {
            "user_id": uid,
            "event_timestamp": ts,
            "resume": b"%PDF-1.4\n" + bytes([uid]),
            "photo": b"\x89PNG\r\n\x1a\n" + bytes([uid]),
            "device": str(uuid.UUID(int=uid)),
            "balance": decimal.Decimal("12.34") * uid,
            "flags": [True, uid % 2 == 0],
            "blobs": [bytes([uid]), b"\x00"],
            "logins": [ts - timedelta(hours=1), ts],
            "levels": [uid, 2],
            "weights": [0.5 * uid],
        }
    )
media_schema = pa.schema(
    [
        ("user_id", pa.int64()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("resume", pa.binary()),
        ("photo", pa.binary()),
        ("device", pa.string()),
        ("balance", pa.decimal128(10, 2)),
        ("flags", pa.list_(pa.bool_())),
        ("blobs", pa.list_(pa.binary())),
        ("logins", pa.list_(pa.timestamp("us", tz="UTC"))),
        ("levels", pa.list_(pa.int32())),
        ("weights", pa.list_(pa.float32())),
    ]
)
pq.write_table(pa.Table.from_pylist(media, schema=media_schema), out / "media.parquet")
