"""/healthz (liveness, no I/O) and /readyz (database, broker, Feast registry)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from catalog import feast_gateway
from portal.celery import app as celery_app


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No I/O, so a slow dependency never restarts the pod."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return f"{connection.vendor} {connection.settings_dict['NAME']}"


def _check_broker() -> str:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        return f"{conn.transport_cls} {conn.as_uri()}"


def _check_registry() -> str:
    return "; ".join(feast_gateway.check_registry(repo) for repo in feast_gateway.governed_repos())


CHECKS: dict[str, Callable[[], str]] = {
    "database": _check_database,
    "broker": _check_broker,
    "feast_registry": _check_registry,
}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: every dependency answers; 503 names the failing part(s)."""
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check()
            results[name] = {"ok": True, "detail": detail}
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {message}"[:500]}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    failing = [name for name, r in results.items() if not r["ok"]]
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": results}
    return JsonResponse(body, status=200 if not failing else 503)
