"""The leakage guard: a training row holds exactly what was known at its time, never later values.

Feast does the point-in-time join; these tests hold the built datasets to an independent reference
computed here from the offline file, and to planted values on either side of a row's time and TTL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.services.sync import registry_sync
from jobs.models import JobRun, TrainingDataset
from jobs.services.training import training_dataset_start
from jobs.tasks import training_dataset_task
from tests.training.conftest import DATA_END, PROJECT, V1_COLUMNS

TTL = timedelta(days=7)
FEATURES = [c.split("__", 1)[1] for c in V1_COLUMNS]


def build(proposer: User, rows: pd.DataFrame, storage_dir: Path, **kwargs: Any) -> pd.DataFrame:
    """Queue a dataset (the task is called directly, as the worker would) and read its parquet back."""
    run = training_dataset_start(
        actor=proposer,
        project=PROJECT,
        feature_service=kwargs.pop("feature_service", "attrition_model_v1"),
        entities={c: [v.isoformat() if isinstance(v, pd.Timestamp) else v for v in rows[c]] for c in rows.columns},
        **kwargs,
    )
    training_dataset_task(job_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    dataset = TrainingDataset.objects.get(job_run=run)
    return pq.read_table(storage_dir / PROJECT / dataset.name / "data.parquet").to_pandas()


def reference(source: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time values computed independently: per row, the source row with the latest event time
    (then created time) in [t - TTL, t] for that employee; none -> null."""
    out = []
    by_employee = {k: g.sort_values(["event_timestamp", "created"]) for k, g in source.groupby("employee_id")}
    for employee_id, t in zip(rows.employee_id, rows.event_timestamp, strict=True):
        g = by_employee.get(employee_id)
        window = g[(g.event_timestamp <= t) & (g.event_timestamp >= t - TTL)] if g is not None else None
        out.append(
            window.iloc[-1][FEATURES].to_dict() if window is not None and len(window) else dict.fromkeys(FEATURES)
        )
    return pd.DataFrame(out)


def test_every_row_holds_the_latest_value_known_at_its_time_within_the_ttl(
    proposer: User, synced: feast_gateway.RepoRef, employees: pd.DataFrame, storage_dir: Path
) -> None:
    rng = np.random.default_rng(3)
    ids = rng.choice(employees.employee_id.unique(), size=300)
    offsets = rng.integers(0, 200 * 86400, size=300)
    # Half the rows sit right on a snapshot's time (the boundary: the value counts), half anywhere.
    snaps = employees.sample(150, random_state=3)
    rows = pd.DataFrame(
        {
            "employee_id": np.concatenate([ids[:150], snaps.employee_id.to_numpy()]),
            "event_timestamp": np.concatenate(
                [
                    (pd.Timestamp(DATA_END) - pd.to_timedelta(offsets[:150], unit="s")).to_numpy(),
                    snaps.event_timestamp.to_numpy(),
                ]
            ),
            "label": np.arange(300) % 3,
        }
    )
    rows["event_timestamp"] = pd.to_datetime(rows.event_timestamp, utc=True)
    rows = rows.drop_duplicates(["employee_id", "event_timestamp"]).reset_index(drop=True)
    built = build(proposer, rows, storage_dir)
    assert len(built) == len(rows)  # no row is dropped (Feast's file store drops rows without a value in TTL)
    assert built.label.tolist() == rows.label.tolist()
    expected = reference(employees, rows)
    nulls = 0
    for feature, column in zip(FEATURES, V1_COLUMNS, strict=True):
        got, want = built[column].to_numpy(dtype="float64"), expected[feature].to_numpy(dtype="float64")
        assert np.array_equal(np.isnan(got), np.isnan(want)), feature
        assert np.allclose(got[~np.isnan(got)], want[~np.isnan(want)]), feature
        nulls += int(np.isnan(got).sum())
    assert 0 < nulls < len(rows) * len(FEATURES)  # both cases occur


@pytest.fixture
def planted(editable_demo_repo: feast_gateway.RepoRef, transactional_db: None, storage_dir: Path) -> dict[str, Any]:
    """The repo's employee file with two planted snapshots of one employee, on either side of a time T."""
    path = editable_demo_repo.path / "data" / "employee_attrition.parquet"
    source = pd.read_parquet(path)
    victim = source[source.is_active == 1].iloc[5]
    t = pd.Timestamp(DATA_END - timedelta(days=170, hours=-12))  # mid-history, at noon
    history = source[source.employee_id == victim.employee_id]
    source = pd.concat([source[source.employee_id != victim.employee_id], history[history.event_timestamp < t - TTL]])
    before = victim.copy()
    before["event_timestamp"], before["created"], before["tenure"] = t - timedelta(days=2), t - timedelta(days=2), 1.25
    after = victim.copy()
    after["event_timestamp"], after["created"], after["tenure"] = t + timedelta(seconds=1), t, 999.0
    pd.concat([source, pd.DataFrame([before, after])]).to_parquet(path, index=False)
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    return {"employee_id": int(victim.employee_id), "t": t}


def test_a_value_stamped_after_the_rows_time_never_appears_in_it(
    proposer: User, planted: dict[str, Any], storage_dir: Path
) -> None:
    t = planted["t"]
    rows = pd.DataFrame(
        {
            "employee_id": [planted["employee_id"]] * 3,
            "event_timestamp": [t, t + timedelta(seconds=1), t - timedelta(days=2, seconds=1)],
        }
    )
    built = build(proposer, rows, storage_dir)
    tenure = built["employee_features__tenure"].tolist()
    assert tenure[0] == pytest.approx(1.25)  # at T: the value of T - 2 days, not the one stamped at T + 1 s
    assert tenure[1] == pytest.approx(999.0)  # one second later it is known
    assert np.isnan(tenure[2])  # before the earlier value existed: nothing (older history is beyond the TTL)
    assert 999.0 not in built[built.event_timestamp < t + timedelta(seconds=1)]["employee_features__tenure"].tolist()


def test_a_value_older_than_the_views_ttl_is_null_and_the_row_is_kept(
    proposer: User, planted: dict[str, Any], storage_dir: Path
) -> None:
    last = planted["t"] + timedelta(seconds=1)  # the employee's last snapshot (tenure 999)
    rows = pd.DataFrame(
        {
            "employee_id": [planted["employee_id"]] * 2,
            "event_timestamp": [last + TTL, last + TTL + timedelta(seconds=1)],
            "label": [1, 0],
        }
    )
    built = build(proposer, rows, storage_dir)
    assert len(built) == 2 and built.label.tolist() == [1, 0]  # Feast's file store would drop the second row
    assert built["employee_features__tenure"][0] == pytest.approx(999.0)  # exactly TTL old: still valid
    assert built[V1_COLUMNS].iloc[1].isna().all()  # one second older than the TTL: every feature is null
