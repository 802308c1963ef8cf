"""/healthz (liveness, no I/O) and /readyz (database, broker, Feast registry; and whether uploads can be isolated)."""

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


def _check_upload_sandbox() -> str:
    return feast_gateway.isolation_check()


def _check_workers() -> str:
    from jobs.services.workers import ALIVE_SECONDS, workers_alive

    alive = workers_alive()
    if not alive:
        raise RuntimeError(f"no Celery worker has reported in the last {ALIVE_SECONDS} s: background jobs wait")
    return f"{len(alive)} alive: " + ", ".join(w.hostname for w in alive[:10])


# Reported by /readyz but never a reason for 503: the web serves pages and the API without workers (jobs then
# wait in the queue), and without the upload sandbox's kernel features it serves everything except uploads.
INFORMATIONAL: dict[str, Callable[[], str]] = {"upload_sandbox": _check_upload_sandbox, "workers": _check_workers}


def _run(check: Callable[[], str]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        result: dict[str, object] = {"ok": True, "detail": check()}
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result = {"ok": False, "error": f"{type(exc).__name__}: {message}"[:500]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: every dependency answers; 503 names the failing part(s)."""
    results = {name: _run(check) for name, check in CHECKS.items()}
    failing = [name for name, r in results.items() if not r["ok"]]
    results.update({name: {**_run(check), "informational": True} for name, check in INFORMATIONAL.items()})
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": results}
    return JsonResponse(body, status=200 if not failing else 503)
