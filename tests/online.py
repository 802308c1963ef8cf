"""What the online store must hold, derived from the offline rows it was materialized from.

Tests check online reads against these rows (value, event timestamp, status), never a status alone:
Feast's Redis store answers PRESENT for keys it does not hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import environment as env

EMPLOYEE_TTL = timedelta(days=7)  # employee_features' TTL in feature_repo/features.py
V1_ORDER = ["tenure", "salary_band", "overtime", "promotion_stagnation", "career_velocity", "overall_satisfaction"]


def latest_offline_rows(
    path: Path, key: str, start: datetime, end: datetime, columns: list[str] | None = None
) -> pd.DataFrame:
    """Each entity's latest row with start <= event_timestamp <= end, indexed by `key`: exactly what
    `feast materialize START END` writes (Feast's window is inclusive at both ends; ties go to `created`)."""
    frame = pd.read_parquet(path, columns=columns)
    frame = frame[(frame.event_timestamp >= start) & (frame.event_timestamp <= end)]
    order = ["event_timestamp", "created"] if "created" in frame.columns else ["event_timestamp"]
    return frame.sort_values(order, kind="stable").drop_duplicates(key, keep="last").set_index(key)


def employee_rows(data_dir: Path = env.DEMO_REPO / "data", end: datetime = env.DATA_END) -> pd.DataFrame:
    """The employee_features rows the registry template materialized (its TTL window ending at `end`)."""
    return latest_offline_rows(data_dir / "employee_attrition.parquet", "employee_id", end - EMPLOYEE_TTL, end)


def active_employee(rows: pd.DataFrame, nth: int = 3) -> int:
    """The nth employee online whose latest snapshot says they still work here."""
    return int(rows[rows.is_active == 1].index[nth])


def assert_served(values: list[Any], row: pd.Series, *, order: list[str] = V1_ORDER) -> None:
    """An online read of one entity (gateway OnlineValues) is exactly `row`: names in order, PRESENT,
    the offline values, and the offline event timestamp."""
    assert [v.feature for v in values] == order
    assert [v.status for v in values] == ["PRESENT"] * len(order)
    assert [v.value for v in values] == [pytest.approx(float(row[name]), rel=1e-6) for name in order]
    assert {v.event_timestamp for v in values} == {row.event_timestamp.to_pydatetime()}
