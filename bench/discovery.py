"""Benchmark: discovery (search and object pages) on the synthetic registry, against Feast's own search.

    python bench/discovery.py --views 10000      (prints one JSON object)

Builds the same synthetic SQL registry as bench/catalog_sync.py (N views x 20 fields, names and
descriptions from a 75-word vocabulary), syncs it into a fresh portal database, then measures, in
one process and on the same data:
  search_ms      catalog.search.search() per query class (typical word, prefix, typo, word + facets):
                 p50/p95 over repeated runs, each including facet counts and the page of hits;
                 median_matches is the exact number of matches (counted apart, untimed) and
                 estimated the share of runs whose total and facets were estimates (past 2,000
                 matches search counts a 1-in-16 sample of them and says "about")
  page_ms        the feature view and feature service pages through Django's test client (full render,
                 login, middleware), with the number of SQL queries per page
  feast_search   Feast 0.67's registry search (`feast ui`, GET /api/v1/search?query=) on the same
                 registry: a few calls, each with a timeout
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_sync import PROJECT, build_registry, prepare

QUERIES = {
    "typical_word": ["revenue", "churn", "latency", "payment", "delivery", "balance"],
    "prefix": ["reve", "chur", "laten", "paym", "deliv", "bala"],
    "typo": ["revenu", "satisfacton", "latncy", "paymnt", "delivry", "balanc"],
}
FACETED = [
    ("revenue", {"kind": "feature", "dtype": "Float32"}),
    ("churn", {"tag": "tier=gold"}),
    ("latency", {"kind": "feature_view", "owner": "team3@example.com"}),
    ("payment", {"kind": "feature", "entity": "entity_3"}),
]


def _pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "n": len(ordered)}


def _exact_matches(q: str, filters: dict[str, str]) -> int:
    """How many entries match, counted exactly (for the report only: search itself estimates past 2,000)."""
    import json as _json

    from django.db import connection

    from catalog.search.backends import COLUMN_FACETS, Query

    query = Query.parse(q, filters)
    where, params = ["e.vector @@ to_tsquery('simple', %s)"], [query.tsquery()]
    for name, value in query.filters:
        if name in COLUMN_FACETS:
            where.append(f"e.{name} = %s")
            params.append(value)
        else:
            where.append("e.facet_values @> %s::jsonb")
            params.append(_json.dumps([f"{name}:{value}"]))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM catalog_searchentry e WHERE {' AND '.join(where)}", params)
        (count,) = cursor.fetchone() or (0,)
        return int(count)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def feast_search(repo: Path, queries: list[str], timeout: float) -> dict[str, Any]:
    """Time Feast's own registry search (served by `feast ui`) on the same registry."""
    port = _free_port()
    feast = Path(sys.executable).with_name("feast")
    proc = subprocess.Popen(
        [str(feast), "-c", str(repo), "ui", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: list[float] = []
    error = ""
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/projects", timeout=timeout).read()
                break
            except OSError:
                time.sleep(1)
        for q in queries:
            started = time.perf_counter()
            try:
                body = urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/search?query={q}", timeout=timeout
                ).read()
                json.loads(body)
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"ms": [round(s, 1) for s in samples], "error": error}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--feast-calls", type=int, default=3)
    parser.add_argument("--feast-timeout", type=float, default=600)
    args = parser.parse_args()
    n = args.views
    repo, _registry_db, registry_url = prepare(n, "bench_disc", DJANGO_ALLOWED_HOSTS="testserver,localhost")
    build_registry(registry_url, n)

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    from catalog import search
    from catalog.models import SearchEntry
    from catalog.services.sync import registry_sync

    run = registry_sync(trigger="bench")[0]
    assert run.status == "succeeded", run.error
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = User.objects.create_user("bench", password="bench-password-1")
    user.groups.add(Group.objects.get(name="viewer"))

    result: dict[str, Any] = {"views": n, "entries": SearchEntry.objects.count(), "search_ms": {}, "page_ms": {}}
    for _ in range(2):  # warm the caches and the connection
        search.search(user=user, q="revenue")
    queries_by_class = {
        **QUERIES,
        # An object's own name: few matches, the everyday "open the thing I know" search.
        "name": [f"view_{n // 3:05d}", f"service_{n // 60:04d}", "entity_7", f"source_{n // 2:05d}"],
    }
    classes: dict[str, list[tuple[str, dict[str, str]]]] = {
        name: [(q, {}) for q in queries] for name, queries in queries_by_class.items()
    }
    classes["with_facets"] = FACETED
    for name, cases in classes.items():
        samples: list[float] = []
        estimated = 0
        matches: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, dict[str, str]]] = {}
        for _ in range(args.repeat):
            for q, filters in cases:
                started = time.perf_counter()
                r = search.search(user=user, q=q, filters=filters)
                samples.append((time.perf_counter() - started) * 1000)
                estimated += not (r.total_exact and r.facets_exact)
                matches[(q, tuple(filters.items()))] = (r.corrected or q, filters)
        exact = [_exact_matches(q, dict(f)) for q, f in matches.values()]
        result["search_ms"][name] = {
            **_pct(samples),
            "median_matches": int(statistics.median(exact)),
            "estimated": round(estimated / len(samples), 2),
        }
    samples = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        search.suggest(user=user, q="reve")
        samples.append((time.perf_counter() - started) * 1000)
    result["search_ms"]["typeahead"] = _pct(samples)
    all_search = [v["p95"] for k, v in result["search_ms"].items()]
    result["search_p95_max_ms"] = max(all_search)

    client = Client()
    client.force_login(user)
    pages = {
        "feature_view": f"/projects/{PROJECT}/feature-views/view_{n // 2:05d}/",
        "feature_service": f"/projects/{PROJECT}/feature-services/service_{n // 40:04d}/",
        "search_page": "/search/?q=revenue",
    }
    for name, url in pages.items():
        assert client.get(url).status_code == 200, url
        samples = []
        for _ in range(args.repeat):
            reset_queries()
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        result["page_ms"][name] = {**_pct(samples), "queries": len(ctx.captured_queries)}

    feast = feast_search(repo, QUERIES["typical_word"][: args.feast_calls], args.feast_timeout)
    result["feast_search_ms"] = feast
    if feast["ms"]:
        ours = result["search_ms"]["typical_word"]["p50"]
        result["feast_search_vs_portal"] = round(statistics.median(feast["ms"]) / ours, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
