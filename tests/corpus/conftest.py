"""The repo corpus: Feast's own `feast init` templates and the hand-written tests/repos/shapes, applied with
the real `feast` CLI into one SQL registry, as a team moving a template to shared stores would.

Once per test worker: `feast init` each template that runs without cloud credentials (`local`, `minimal`,
and `postgres` against the machine's PostgreSQL, in a database of the worker's own; ray, rag and
pytorch_nlp need packages the portal does not install and the others need clouds or servers), copy
tests/repos/shapes and generate its data ending at the data's "now" (`env.DATA_END`), give each repo a
`feature_store.services.yaml` that keeps the template's settings but points the registry at the worker's
SQL registry and the online store at its Redis database, `feast apply` each, and keep the result as a
template database. Each test gets a fresh clone and an online store without any corpus key.

The postgres template keeps its PostgreSQL offline store: its views read `PostgreSQLSource` queries.
Feast 0.67's own bootstrap of that template fails to load its sample data (`cannot adapt type 'dict'`:
`create_driver_hourly_stats_df` now has Map columns `df_to_postgres_table` cannot insert), so the fixture
answers "no" to the upload and loads the columns the template's views read, with the same Feast helpers,
as a team following the template would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml
from django.conf import settings

from catalog import feast_gateway
from tests import environment as env
from tests.conftest import recreate_database, run_feast

ROOT = Path(__file__).resolve().parents[2]
SHAPES_SRC = ROOT / "tests" / "repos" / "shapes"
TEMPLATES = {  # feast init template -> project
    "local": "corpus_local",
    "minimal": "corpus_minimal",
    "postgres": "corpus_postgres",
}
CORPUS_TEMPLATE_DB = f"{env.REGISTRY_TEMPLATE_DB}_corpus"
OFFLINE_DB = f"fp_offline_{env.TAG}"  # the postgres template's offline store (its PostgreSQLSource tables)
POSTGRES_DRIVERS = [1001, 1002, 1003, 1004, 1005]  # the template bootstrap's drivers and 15 days of hours


@dataclass(frozen=True)
class Corpus:
    """The corpus's repos by project name, all in the worker's SQL registry."""

    repos: dict[str, feast_gateway.RepoRef]

    @property
    def projects(self) -> list[str]:
        return list(self.repos)

    def __getitem__(self, project: str) -> feast_gateway.RepoRef:
        return self.repos[project]


def stores_yaml(repo_dir: Path, name: str, registry: Any, online_store: dict[str, str]) -> feast_gateway.RepoRef:
    """A YAML `name` in the repo: its feature_store.yaml's settings with this registry and online store
    (what a team edits when it moves a template to shared stores)."""
    config = yaml.safe_load((repo_dir / "feature_store.yaml").read_text())
    config.update(registry=registry, online_store=online_store)
    config.setdefault("offline_store", {"type": "file"})
    (repo_dir / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return feast_gateway.repo_ref(repo_dir, name)


def feast_init(parent: Path, template: str, name: str) -> Path:
    """`feast init NAME -t TEMPLATE` (the template's own bootstrap writes its data, from the clock)."""
    feast_bin = str(Path(sys.executable).with_name("feast"))
    args = [feast_bin, "init", name, *(["-m"] if template == "minimal" else ["-t", template])]
    answers = postgres_answers() if template == "postgres" else None
    result = subprocess.run(args, cwd=parent, input=answers, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"feast init -t {template} failed:\n{result.stderr[-3000:]}"
    if template == "postgres":
        load_postgres_template_data()
    return parent / name / "feature_repo"


def postgres_answers() -> str:
    """The postgres template's prompts answered for the worker's offline database (trust auth: any
    password), declining the template's own sample upload, which fails in Feast 0.67."""
    server = urlsplit(env.PG)
    recreate_database(OFFLINE_DB)
    answers = [server.hostname, str(server.port or 5432), OFFLINE_DB, "public", server.username, "unused"]
    return "\n".join([*map(str, answers), "disable", "n"]) + "\n"


def load_postgres_template_data() -> None:
    """The table the postgres template's source queries, as its bootstrap would write it: Feast's driver
    sample over the last 15 days up to this hour, through Feast's `df_to_postgres_table`, without the Map
    columns no view of the template reads (the ones that break the bootstrap)."""
    from feast.driver_test_data import create_driver_hourly_stats_df
    from feast.infra.utils.postgres.connection_utils import df_to_postgres_table
    from feast.infra.utils.postgres.postgres_config import PostgreSQLConfig

    server = urlsplit(env.PG)
    end = datetime.now().replace(microsecond=0, second=0, minute=0)
    frame = create_driver_hourly_stats_df(POSTGRES_DRIVERS, end - timedelta(days=15), end)
    frame = frame[["event_timestamp", "driver_id", "conv_rate", "acc_rate", "avg_daily_trips", "created"]]
    config = PostgreSQLConfig(
        host=server.hostname,
        port=server.port or 5432,
        database=OFFLINE_DB,
        user=server.username,
        password="unused",
        sslmode="disable",
    )
    df_to_postgres_table(config=config, df=frame, table_name="feast_driver_hourly_stats")


def copy_shapes_repo(dst: Path) -> Path:
    """A copy of tests/repos/shapes with its tiny data, ending at the data's "now"."""
    shutil.copytree(SHAPES_SRC, dst, ignore=shutil.ignore_patterns("data", "__pycache__"))
    subprocess.run(
        [sys.executable, str(dst / "make_data.py"), str(dst / "data"), env.DATA_END.isoformat()],
        check=True,
        capture_output=True,
    )
    return dst


def clear_corpus_keys(projects: list[str]) -> None:
    """Delete the corpus projects' keys from the worker's Redis database (Feast's keys end with the project)."""
    client = redis.Redis.from_url(settings.REDIS_URL.url)
    suffixes = tuple(p.encode() for p in projects)
    keys = [k for k in client.scan_iter(count=1000) if k.endswith(suffixes)]
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def corpus_template() -> Corpus:
    """Every corpus repo applied by the `feast` CLI into one SQL registry, kept as a template database."""
    base = env.WORK / "corpus"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    dirs = {project: feast_init(base, template, project) for template, project in TEMPLATES.items()}
    dirs["shapes"] = copy_shapes_repo(base / "shapes")
    recreate_database(env.REGISTRY_DB)
    repos = {}
    for project, path in dirs.items():
        repos[project] = stores_yaml(
            path,
            "feature_store.services.yaml",
            {"registry_type": "sql", "path": "${FEAST_REGISTRY_URL}", "cache_ttl_seconds": 0},
            {"type": "redis", "connection_string": "${FEAST_REDIS_CONNECTION_STRING}"},
        )
        assert feast_gateway.registry_location(repos[project]).project == project
        run_feast(repos[project], "apply")
    recreate_database(CORPUS_TEMPLATE_DB, template=env.REGISTRY_DB)
    return Corpus(repos)


@pytest.fixture
def corpus(corpus_template: Corpus, settings: Any) -> Iterator[Corpus]:
    """The corpus in a fresh clone of its registry, governed by the portal; no corpus value online."""
    recreate_database(env.REGISTRY_DB, template=CORPUS_TEMPLATE_DB)
    clear_corpus_keys(corpus_template.projects)
    settings.FEAST_REPO_PATHS = [repo.path for repo in corpus_template.repos.values()]
    yield corpus_template
    feast_gateway.dispose_engines()
    feast_gateway.reset_stores()


def cli_copy(repo: feast_gateway.RepoRef, dst: Path) -> feast_gateway.RepoRef:
    """A copy of a corpus repo with its own file registry and SQLite online store, applied by the CLI: where
    `feast materialize` writes and Feast reads, to hold the portal's results to Feast's on the same data."""
    shutil.copytree(repo.path, dst, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    copy = stores_yaml(
        dst, "feature_store.cli.yaml", "data/registry.db", {"type": "sqlite", "path": "data/online_store.db"}
    )
    run_feast(copy, "apply")
    return copy
