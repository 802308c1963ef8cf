"""Benchmark: the REST API on a synthetic registry of N feature views (default 10k).

    python bench/api.py --views 10000      (prints one JSON object)

Builds the same synthetic SQL registry as bench/catalog_sync.py (N views x 20 fields, entities, one
data source per view, N/20 services), syncs it into a fresh portal database, then times list and
detail endpoints through Django's test client with an API token (auth, throttling, serialization and
pagination included): p50/p95 over repeated requests, plus the SQL queries each request ran. The
query counts are the same at 1k and 10k views: lists are one page of a cursor, details a fixed set of
queries.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_sync import PROJECT, build_registry, prepare


def _pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    n = args.views
    _repo, _registry_db, registry_url = prepare(
        n, "bench_api", DJANGO_ALLOWED_HOSTS="testserver,localhost", API_THROTTLE_TOKEN="1000000/minute"
    )
    build_registry(registry_url, n)

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    call_command("migrate", verbosity=0)
    from catalog.services.sync import registry_sync
    from catalog.services.tokens import api_token_create

    run = registry_sync(trigger="bench")[0]
    assert run.status == "succeeded", run.error
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = User.objects.create_user("bench", password="bench-password-1")
    user.groups.add(Group.objects.get(name="viewer"))
    _, raw = api_token_create(actor=user, user=user, name="bench", scopes=["read"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    view, service = f"view_{n // 2:05d}", f"service_{n // 40:04d}"
    base = f"/api/v1/projects/{PROJECT}"
    endpoints = {
        "feature_views_list": "/api/v1/feature-views/",
        "feature_views_list_500": "/api/v1/feature-views/?page_size=500",
        "feature_views_filtered": "/api/v1/feature-views/?status=active&ordering=-updated_at",
        "objects_list": "/api/v1/objects/",
        "feature_view_detail": f"{base}/feature-views/{view}/",
        "feature_service_detail": f"{base}/feature-services/{service}/",
        "features_of_a_view": f"{base}/features/?view={view}",
        "history": f"{base}/feature-views/{view}/history/",
    }
    result: dict[str, Any] = {"views": n, "endpoints": {}}
    for name, url in endpoints.items():
        assert client.get(url).status_code == 200, url  # warm up
        samples: list[float] = []
        queries = 0
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.content[:200])
            queries = len(ctx.captured_queries)
        result["endpoints"][name] = {**_pct(samples), "queries": queries}
    # The second page of a cursor costs what the first does.
    next_url = client.get("/api/v1/feature-views/").json()["next"]
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(next_url).status_code == 200
    result["endpoints"]["feature_views_list"]["queries_page_2"] = len(ctx.captured_queries)
    result["p95_max_ms"] = max(v["p95"] for v in result["endpoints"].values())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
