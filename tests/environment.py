"""Per-worker test environment, set before Django loads settings (loaded with `-p tests.environment`).

Every pytest-xdist worker gets its own:
- portal database: pytest-django creates test_feature_portal_<worker> from DATABASE_URL;
- Feast SQL registry database: fp_registry_<worker> (cloned per test from a template, see conftest);
- Redis database number: the Feast online store, the Celery broker and the cache of that worker;
- copy of feature_repo/ with its own generated data, and a var/ directory.
So parallel workers, and tests within a worker, never share state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
WORKER_INDEX = int(WORKER.removeprefix("gw") or 0) if WORKER.startswith("gw") else 0
# TEST_SLOT lets several suites run at once on one machine (e.g. two checkouts): each slot gets its own
# databases, Redis database numbers and queues. Slot s, worker i uses Redis database 1 + 3*s + i.
SLOT = int(os.environ.get("TEST_SLOT", "0"))
if WORKER_INDEX > 2 or not 0 <= SLOT <= 4:
    raise RuntimeError("TEST_SLOT is 0..4 and at most 3 workers run per slot: each needs its own Redis database")

PG = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = 1 + 3 * SLOT + WORKER_INDEX
TAG = f"s{SLOT}_{WORKER}" if SLOT else WORKER
REGISTRY_DB = f"fp_registry_{TAG}"
REGISTRY_TEMPLATE_DB = f"fp_registry_tmpl_{TAG}"

WORK = Path(tempfile.mkdtemp(prefix=f"feature-portal-tests-{WORKER}-"))
DEMO_REPO = WORK / "feature_repo"


def _data_end() -> datetime:
    """The generated data's "now": today 00:00 UTC, moved by TEST_DATA_SHIFT_DAYS.

    Feast measures TTLs and incremental windows against the real clock, so the data must be as old as the
    day the suite runs on, never a fixed calendar date. `make test` also runs a subset with the data's "now"
    months in the past and in the future (bin/test), so a test that only passes near one date fails today.
    """
    shift = int(os.environ.get("TEST_DATA_SHIFT_DAYS", "0"))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=shift)


DATA_END = _data_end()  # tz-aware; tests derive every window and timestamp from it


def _copy_repo(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("data", "__pycache__", "examples"))


_copy_repo(ROOT / "feature_repo", DEMO_REPO)
subprocess.run(
    [
        sys.executable,
        "-m",
        "feature_repo.generate",
        "--employees",
        "300",
        "--years",
        "1",
        "--end",
        DATA_END.date().isoformat(),
        "--out",
        str(DEMO_REPO / "data"),
    ],
    cwd=ROOT,
    check=True,
    capture_output=True,
)

os.environ.update(
    {
        "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": f"{PG}/feature_portal" + (f"_s{SLOT}" if SLOT else ""),
        "REDIS_URL": f"{REDIS}/{REDIS_DB}",
        "FEAST_REGISTRY_URL": f"{PG.replace('postgresql://', 'postgresql+psycopg://')}/{REGISTRY_DB}",
        "FEAST_REPO_PATH": str(DEMO_REPO),
        "PORTAL_VAR_DIR": str(WORK / "var"),
        "DJANGO_STATIC_ROOT": str(WORK / "static"),
        "CELERY_QUEUE": f"portal-tests-{TAG}",
        "FEAST_NO_PROGRESS": "1",
    }
)
