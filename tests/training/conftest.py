"""Fixtures for the training-dataset and model-contract tests: the synced demo registry, a dataset
storage directory per test, the demo data as the generator wrote it, and a wait for jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.services.sync import registry_sync
from tests import environment as env

PROJECT = "employee_attrition"
DATA_END = env.DATA_END
V1_COLUMNS = [
    "employee_features__tenure",
    "employee_features__salary_band",
    "employee_features__overtime",
    "employee_features__promotion_stagnation",
    "employee_features__career_velocity",
    "employee_features__overall_satisfaction",
]


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef, transactional_db: None, storage_dir: Path) -> feast_gateway.RepoRef:
    """The demo registry (fresh clone) mirrored into the catalog."""
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    return demo_repo


@pytest.fixture(scope="session")
def employees() -> pd.DataFrame:
    """The demo's employee snapshots (the offline source of employee_features)."""
    return pd.read_parquet(env.DEMO_REPO / "data" / "employee_attrition.parquet")


def files_under(path: Path) -> list[Path]:
    """Every file below a directory (nothing when it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture
def make_token(db: None) -> Callable[..., str]:
    """make_token(user, scopes) -> a raw API token of that user."""
    from catalog.services.tokens import api_token_create

    def make(user: User, scopes: list[str] | None = None) -> str:
        _, raw = api_token_create(actor=user, user=user, name="test", scopes=scopes or ["read"])
        return raw

    return make
