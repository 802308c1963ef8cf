"""Deterministic synthetic HR data for the demo repo.

    python -m feature_repo.generate --employees 1000 --years 1

Writes, under feature_repo/data/ (or --out):
  employee_attrition.parquet  monthly snapshots per employee, plus a fresh one for everyone active
  department_stats.parquet    monthly aggregates per department
  employee_activity.parquet   daily activity counters for the last two weeks

The same arguments (and --end) always produce the same bytes' worth of rows: the random
generator is seeded and "now" is --end (default: today 00:00 UTC), so tests can assert values.
Distributions are plausible rather than real: tenure accrues, satisfaction drifts and dips
before people leave, leavers are more often on overtime and stagnating.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent / "data"
DEPARTMENTS = 12
SNAPSHOT_DAYS = 30
FIRST_EMPLOYEE_ID = 100


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def generate_employees(n: int, years: int, end: datetime, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly snapshots for n employees over `years`, with leavers; one row per (employee, snapshot)."""
    start = end - timedelta(days=365 * years)
    window_days = (end - start).days
    ids = np.arange(FIRST_EMPLOYEE_ID, FIRST_EMPLOYEE_ID + n, dtype=np.int64)
    department = rng.integers(1, DEPARTMENTS + 1, size=n).astype(np.int64)
    # Hired up to 15 years before the window, or during it.
    hire_offset = rng.integers(-365 * 15, window_days - 30, size=n)
    hire_day = np.maximum(hire_offset, 0)  # first snapshot day inside the window
    base_tenure_years = np.maximum(-hire_offset, 0) / 365.0
    overtime = (rng.random(n) < 0.28).astype(np.int64)
    salary_band = np.clip(rng.normal(3.5 + base_tenure_years / 4, 1.4, size=n).round(), 1, 8).astype(np.int64)
    satisfaction0 = np.clip(rng.beta(5, 2.5, size=n) - 0.12 * overtime, 0, 1)
    promotions = rng.poisson(0.18 * (base_tenure_years + 1))
    # Yearly attrition around 15%, higher with overtime and low satisfaction.
    hazard = 0.15 * years * (1 + 0.9 * overtime) * (1.6 - satisfaction0)
    leaves = rng.random(n) < np.clip(hazard, 0, 0.95)
    leave_day = np.where(leaves, rng.integers(0, window_days, size=n), window_days + 1)
    leave_day = np.maximum(leave_day, hire_day + SNAPSHOT_DAYS)

    snapshot_days = np.arange(0, window_days, SNAPSHOT_DAYS)
    # Per employee: snapshots between hire and leave (inclusive of the leaving snapshot).
    emp_idx, day = np.nonzero(
        (snapshot_days[None, :] >= hire_day[:, None]) & (snapshot_days[None, :] < leave_day[:, None])
    )
    day = snapshot_days[day]
    # Leavers get a final snapshot on their leaving day (is_active = 0); everyone still employed gets
    # a fresh snapshot one day before `end`, inside the 7-day TTL.
    leaver_idx = np.nonzero(leaves & (leave_day < window_days))[0]
    active_idx = np.nonzero(~leaves | (leave_day >= window_days))[0]
    emp_idx = np.concatenate([emp_idx, leaver_idx, active_idx])
    day = np.concatenate([day, leave_day[leaver_idx], np.full(active_idx.size, window_days - 1)])
    rows = emp_idx.size

    left_now = leaves[emp_idx] & (day >= leave_day[emp_idx])
    tenure = base_tenure_years[emp_idx] + (day - hire_day[emp_idx]) / 365.0
    years_to_leave = (leave_day[emp_idx] - day) / 365.0
    satisfaction = satisfaction0[emp_idx] - np.where(
        leaves[emp_idx], 0.25 * np.exp(-np.clip(years_to_leave, 0, None) * 3), 0
    )
    satisfaction = np.clip(satisfaction + rng.normal(0, 0.04, size=rows), 0, 1)
    promos = promotions[emp_idx]
    career_velocity = promos / np.maximum(tenure, 0.25)
    stagnation = np.clip(1 - promos * 0.3 / np.maximum(tenure, 0.25) + rng.normal(0, 0.05, rows), 0, 1)
    timestamps = (
        pd.to_datetime(start)
        + pd.to_timedelta(day, unit="D")
        + pd.to_timedelta(rng.integers(6 * 3600, 20 * 3600, size=rows), unit="s")
    )
    frame = pd.DataFrame(
        {
            "employee_id": ids[emp_idx],
            "department_id": department[emp_idx],
            "event_timestamp": timestamps,
            "tenure": tenure.astype(np.float32),
            "salary_band": salary_band[emp_idx],
            "overtime": overtime[emp_idx],
            "promotion_stagnation": stagnation.astype(np.float32),
            "career_velocity": career_velocity.astype(np.float32),
            "overall_satisfaction": satisfaction.astype(np.float32),
            "is_active": (~left_now).astype(np.int64),
            "left_company": left_now.astype(np.int64),
        }
    )
    frame["created"] = frame["event_timestamp"] + pd.Timedelta(hours=1)
    return frame.sort_values(["event_timestamp", "employee_id"], kind="stable").reset_index(drop=True)


def generate_departments(employees: pd.DataFrame) -> pd.DataFrame:
    """Monthly department aggregates derived from the employee snapshots."""
    frame = employees.assign(month=employees["event_timestamp"].dt.tz_convert(None).dt.to_period("M"))
    grouped = frame.groupby(["department_id", "month"])
    agg = grouped.agg(
        headcount=("is_active", "sum"),
        leavers=("left_company", "sum"),
        avg_satisfaction=("overall_satisfaction", "mean"),
        event_timestamp=("event_timestamp", "max"),
    ).reset_index()
    agg["attrition_rate_90d"] = (
        agg.groupby("department_id")["leavers"].transform(lambda s: s.rolling(3, min_periods=1).sum())
        / agg["headcount"].clip(lower=1)
    ).astype(np.float32)
    agg["avg_satisfaction"] = agg["avg_satisfaction"].astype(np.float32)
    agg["headcount"] = agg["headcount"].astype(np.int64)
    agg["leavers"] = agg["leavers"].astype(np.int64)  # in the data, not (yet) a feature
    return agg[["department_id", "event_timestamp", "headcount", "attrition_rate_90d", "avg_satisfaction", "leavers"]]


def generate_activity(employees: pd.DataFrame, end: datetime, rng: np.random.Generator) -> pd.DataFrame:
    """Daily activity counters for currently active employees over the last 14 days."""
    latest = employees.drop_duplicates("employee_id", keep="last")
    active = latest.loc[latest["is_active"] == 1, "employee_id"].to_numpy()
    days = np.arange(14, 0, -1)
    emp = np.repeat(active, days.size)
    day = np.tile(days, active.size)
    return pd.DataFrame(
        {
            "employee_id": emp,
            "event_timestamp": pd.to_datetime(end) - pd.to_timedelta(day, unit="D"),
            "logins_7d": rng.poisson(25, size=emp.size).astype(np.int64),
            "meetings_7d": rng.poisson(9, size=emp.size).astype(np.int64),
        }
    )


def generate(*, employees: int, years: int, out: Path, end: datetime, seed: int = 7) -> dict[str, int]:
    """Write the three parquet files; returns row counts per file."""
    if employees < 1 or years < 1:
        raise ValueError("--employees and --years must be at least 1")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    emp = generate_employees(employees, years, end, rng)
    dept = generate_departments(emp)
    activity = generate_activity(emp, end, rng)
    files = {
        "employee_attrition.parquet": emp,
        "department_stats.parquet": dept,
        "employee_activity.parquet": activity,
    }
    for name, frame in files.items():
        tmp = out / f".{name}.tmp"
        frame.to_parquet(tmp, index=False)
        tmp.replace(out / name)  # atomic: a reader never sees a half-written file
    return {name: len(frame) for name, frame in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=1000, help="number of employees (default 1000)")
    parser.add_argument("--years", type=int, default=1, help="years of history (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--end",
        type=lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC),
        default=None,
        help="the 'now' of the data, ISO date (default: today 00:00 UTC)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        counts = generate(
            employees=args.employees, years=args.years, out=args.out, end=args.end or _today(), seed=args.seed
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - started
    for name, count in counts.items():
        print(f"{args.out / name}: {count:,} rows")
    print(f"done in {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
