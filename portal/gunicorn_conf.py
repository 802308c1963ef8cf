"""gunicorn settings shared by `make run` and the container: `gunicorn -c python:portal.gunicorn_conf ...`.

Command-line flags still set workers, threads, bind and timeouts; this module adds the worker hooks.
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    """Each worker starts its upload sandbox's template process (and imports Feast) in the background, so the
    first upload it serves plans in well under a second instead of waiting seconds for both imports. Off with
    GOVERNANCE_SANDBOX_PREWARM=false (each worker then starts its template on its first upload)."""
    from django.conf import settings

    if settings.GOVERNANCE_SANDBOX_PREWARM:
        from catalog import feast_gateway

        feast_gateway.warm_upload_sandbox()
