"""Benchmark: catalog sync versus Feast's own list_* on the same synthetic SQL registry.

    python bench/catalog_sync.py --views 1000     (prints one JSON object)

Builds a Feast SQL registry in PostgreSQL with N feature views x 20 fields (plus entities, one
data source per view and N/20 feature services), by writing the protos Feast itself produces into
Feast's own tables. Then, in one process and on the same registry:
  feast_list_s   Feast: list entities, data sources, feature views (all kinds) and services, uncached
  full_sync_s    portal: first sync into an empty catalog
  noop_sync_s    portal: sync again with nothing changed (fingerprint check only)
  one_change_s   portal: sync after one view changed
Peak memory is how much the process RSS grew during each step (sampled every 5 ms), plus its max RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
PROJECT = "bench"
FIELDS = 20
VOCABULARY = [
    "tenure",
    "salary",
    "overtime",
    "promotion",
    "satisfaction",
    "velocity",
    "clicks",
    "sessions",
    "revenue",
    "churn",
    "latency",
    "orders",
    "basket",
    "refund",
    "discount",
    "coupon",
    "visit",
    "dwell",
    "scroll",
    "search",
    "query",
    "cart",
    "checkout",
    "payment",
    "fraud",
    "chargeback",
    "device",
    "browser",
    "region",
    "country",
    "city",
    "store",
    "inventory",
    "stock",
    "price",
    "margin",
    "cost",
    "supplier",
    "delivery",
    "delay",
    "rating",
    "review",
    "complaint",
    "ticket",
    "support",
    "agent",
    "call",
    "email",
    "open",
    "bounce",
    "unsubscribe",
    "login",
    "streak",
    "balance",
    "loan",
    "credit",
    "debit",
    "limit",
    "utilisation",
    "default",
    "income",
    "age",
    "account",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "trial",
    "renewal",
    "usage",
    "quota",
    "storage",
    "bandwidth",
    "error",
    "crash",
]


def _recreate(dbname: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def synthetic_objects(views: int) -> tuple[list[Any], list[Any], list[Any]]:
    """The benchmark registry's Feast objects: (entities, feature views with their sources, services).

    Shared by build_registry (which writes their protos straight into Feast's tables) and the governance
    benchmark's definitions file (which `feast plan` / `feast apply` import), so both hold the same repo.
    """
    from datetime import UTC, datetime, timedelta

    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Float64, Int64, String

    now = datetime(2026, 11, 1, tzinfo=UTC)
    dtypes = [Float32, Int64, Float64, String]
    ents = [
        Entity(
            name=f"entity_{i}",
            join_keys=[f"key_{i}"],
            value_type=ValueType.INT64,
            description=f"Entity {i}",
            owner=f"team{i % 5}@example.com",
            tags={"team": f"team-{i % 5}"},
        )
        for i in range(10)
    ]
    fvs = []
    # Names and descriptions drawn from a vocabulary, so that a word matches a realistic share of the
    # catalog (about 1 field in 60) rather than every field.
    words = VOCABULARY
    for v in range(views):
        source = FileSource(
            name=f"source_{v:05d}",
            path=f"s3://bench/source_{v:05d}.parquet",
            timestamp_field="event_timestamp",
            description=f"Raw data for view {v}",
            owner=f"team{v % 25}@example.com",
            tags={"team": f"team-{v % 25}"},
        )
        fv = FeatureView(
            name=f"view_{v:05d}",
            entities=[ents[v % 10]],
            ttl=timedelta(days=1 + v % 30),
            source=source,
            schema=[
                Field(
                    name=f"{words[(v * 7 + j) % len(words)]}_{words[(v + j * 13) % len(words)]}_{v:05d}_{j:02d}",
                    dtype=dtypes[j % 4],
                    description=(
                        f"The {words[(v * 3 + j) % len(words)]} of the {words[(v + j) % len(words)]} "
                        f"over {1 + j % 30} days, per {words[v % len(words)]}."
                    ),
                )
                for j in range(FIELDS)
            ],
            description=f"Synthetic view {v} for the catalog benchmark.",
            owner=f"team{v % 25}@example.com",
            tags={"team": f"team-{v % 25}", "domain": f"domain-{v % 7}", "tier": ["gold", "silver"][v % 2]},
        )
        fv.materialization_intervals = [(now - timedelta(days=1), now)]
        # What `feast apply` infers (the join key column), so the registry holds what Feast itself writes.
        fv.entity_columns = [Field(name=f"key_{v % 10}", dtype=Int64)]
        fvs.append(fv)
    services = []
    for s in range(max(1, views // 20)):
        chosen = fvs[s * 5 % views : s * 5 % views + 5] or fvs[:5]
        services.append(
            FeatureService(
                name=f"service_{s:04d}",
                features=[fv[[f.name for f in fv.features[:5]]] for fv in chosen],
                description=f"Model {s}",
                owner="ml@example.com",
                tags={"team": "ml-platform"},
            )
        )
    return ents, fvs, services


def build_registry(url: str, views: int) -> None:
    """Write a synthetic registry with Feast's own protos and tables."""
    from datetime import UTC, datetime

    from feast.infra.registry.sql import (
        data_sources,
        entities,
        feast_metadata,
        feature_services,
        feature_views,
        metadata,
        projects,
    )
    from feast.project import Project
    from sqlalchemy import create_engine, insert

    engine = create_engine(url)
    metadata.create_all(engine)
    now = datetime.now(UTC)
    ts = int(now.timestamp())
    ents, fvs, services = synthetic_objects(views)
    rows_e, rows_s, rows_v, rows_fs = [], [], [], []
    for e in ents:
        e.created_timestamp = e.last_updated_timestamp = now
        rows_e.append(
            {
                "entity_name": e.name,
                "project_id": PROJECT,
                "last_updated_timestamp": ts,
                "entity_proto": e.to_proto().SerializeToString(),
            }
        )
    for fv in fvs:
        fv.created_timestamp = fv.last_updated_timestamp = now
        source = fv.batch_source
        src_proto = source.to_proto()
        src_proto.project = PROJECT
        rows_s.append(
            {
                "data_source_name": source.name,
                "project_id": PROJECT,
                "last_updated_timestamp": ts,
                "data_source_proto": src_proto.SerializeToString(),
            }
        )
        proto = fv.to_proto()
        proto.spec.project = PROJECT
        rows_v.append(
            {
                "feature_view_name": fv.name,
                "project_id": PROJECT,
                "last_updated_timestamp": ts,
                "feature_view_proto": proto.SerializeToString(),
                "materialized_intervals": None,
                "user_metadata": None,
            }
        )
    for fs in services:
        fs.created_timestamp = fs.last_updated_timestamp = now
        proto = fs.to_proto()
        proto.spec.project = PROJECT
        rows_fs.append(
            {
                "feature_service_name": fs.name,
                "project_id": PROJECT,
                "last_updated_timestamp": ts,
                "feature_service_proto": proto.SerializeToString(),
            }
        )
    with engine.begin() as conn:
        conn.execute(
            insert(projects).values(
                project_id=PROJECT,
                project_name=PROJECT,
                last_updated_timestamp=ts,
                project_proto=Project(name=PROJECT).to_proto().SerializeToString(),
            )
        )
        conn.execute(
            insert(feast_metadata).values(
                project_id=PROJECT, metadata_key="project_uuid", metadata_value="bench", last_updated_timestamp=ts
            )
        )
        for table, rows in [
            (entities, rows_e),
            (data_sources, rows_s),
            (feature_views, rows_v),
            (feature_services, rows_fs),
        ]:
            for i in range(0, len(rows), 2000):
                conn.execute(insert(table), rows[i : i + 2000])
    engine.dispose()


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(step: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds, peak RSS growth in MiB during the step, result). RSS is sampled every 5 ms."""
    import threading

    baseline = _rss_mib()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    result = step()
    took = time.perf_counter() - started
    done.set()
    sampler.join()
    return took, max(peak, _rss_mib()) - baseline, result


def prepare(n: int, name: str, **extra_env: str) -> tuple[Path, str, str]:
    """Fresh registry and portal databases for a benchmark, a feature_store.yaml naming the registry, and
    the environment Django reads; returns (repo, registry_db, registry_url). The registry is not built."""
    registry_db, portal_db = f"{name}_registry_{n}", f"{name}_portal_{n}"
    _recreate(registry_db)
    _recreate(portal_db)
    registry_url = f"{PG.replace('postgresql://', 'postgresql+psycopg://')}/{registry_db}"
    repo = Path(tempfile.mkdtemp(prefix=f"{name}-repo-"))
    (repo / "feature_store.yaml").write_text(
        f"project: {PROJECT}\nprovider: local\nregistry:\n  registry_type: sql\n  path: {registry_url}\n"
        "  cache_ttl_seconds: 0\nonline_store:\n  type: sqlite\n  path: online.db\nentity_key_serialization_version: 3\n"
    )
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": "bench",
            "DATABASE_URL": f"{PG}/{portal_db}",
            "FEAST_REPO_PATH": str(repo),
            "FEAST_FS_YAML": "feature_store.yaml",
            "PORTAL_VAR_DIR": str(repo / "var"),
            **extra_env,
        }
    )
    os.environ.pop("REDIS_URL", None)
    return repo, registry_db, registry_url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, default=1000)
    args = parser.parse_args()
    n = args.views
    repo, registry_db, registry_url = prepare(n, "bench")
    started = time.perf_counter()
    build_registry(registry_url, n)
    build_s = time.perf_counter() - started

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from catalog import feast_gateway
    from catalog.models import CatalogObject, Feature
    from catalog.services.sync import registry_sync

    feast_gateway.feast_api()  # import Feast once, outside every timed step

    def feast_list() -> int:
        from feast import FeatureStore
        from feast.repo_config import RepoConfig

        store = FeatureStore(
            config=RepoConfig(**{**feast_gateway.raw_config(feast_gateway.governed_repos()[0]), "repo_path": str(repo)})
        )
        reg = store.registry
        total = 0
        for lister in (
            reg.list_entities,
            reg.list_data_sources,
            reg.list_feature_views,
            reg.list_stream_feature_views,
            reg.list_on_demand_feature_views,
            reg.list_feature_services,
        ):
            total += len(lister(PROJECT, allow_cache=False))
        return total

    # Warm up both sides on a tiny read (connection pools, lazy imports), then measure.
    feast_list_s, feast_list_mb, listed = measure(feast_list)

    def sync() -> Any:
        # The catalog mirror alone; the search index of a large import is its own step, timed below.
        run = registry_sync(trigger="bench", index=False)[0]
        assert run.status in {"succeeded", "noop"}, run.error
        return run

    if os.environ.get("BENCH_PROFILE") == "full":
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        full_s, full_mb, full = measure(lambda: profiler.runcall(sync))
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    else:
        full_s, full_mb, full = measure(sync)
    from catalog.services.sync import search_index_missing

    index_s, index_mb, indexed = measure(search_index_missing)
    noop_s, noop_mb, noop = measure(sync)
    import psycopg

    with psycopg.connect(f"{PG}/{registry_db}", autocommit=True) as conn:
        from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FVProto

        blob = conn.execute(
            "SELECT feature_view_proto FROM feature_views WHERE feature_view_name = 'view_00007'"
        ).fetchone()[0]
        proto = FVProto.FromString(blob)
        proto.spec.description = "changed by the benchmark"
        conn.execute(
            "UPDATE feature_views SET feature_view_proto = %s, last_updated_timestamp = last_updated_timestamp + 1"
            " WHERE feature_view_name = 'view_00007'",
            (proto.SerializeToString(),),
        )
    if os.environ.get("BENCH_PROFILE") == "one":
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        one_s, one_mb, one = measure(lambda: profiler.runcall(sync))
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    else:
        one_s, one_mb, one = measure(sync)
    result = {
        "views": n,
        "fields_per_view": FIELDS,
        "objects": CatalogObject.objects.count(),
        "features": Feature.objects.count(),
        "registry_build_s": round(build_s, 2),
        "feast_list_s": round(feast_list_s, 3),
        "feast_list_objects": listed,
        "full_sync_s": round(full_s, 3),
        "noop_sync_s": round(noop_s, 4),
        "one_change_sync_s": round(one_s, 3),
        "search_index_build_s": round(index_s, 3),
        "search_entries": indexed,
        "full_sync_vs_feast": round(full_s / feast_list_s, 3),
        "noop_sync_vs_feast": round(noop_s / feast_list_s, 4),
        "peak_rss_growth_mib": {
            "feast_list": round(feast_list_mb, 1),
            "full_sync": round(full_mb, 1),
            "noop_sync": round(noop_mb, 2),
            "one_change_sync": round(one_mb, 1),
            "search_index_build": round(index_mb, 1),
        },
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "counts": {
            "full": [full.added, full.changed, full.removed],
            "noop": noop.status,
            "one_change": [one.added, one.changed, one.removed],
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
