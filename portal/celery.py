"""The Celery app. Configuration comes from Django settings (CELERY_* keys)."""

import os
import threading
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["jobs"])
# Liveness heartbeat file for Kubernetes (PORTAL_WORKER_HEARTBEAT_PATH; off when unset).
app.steps["consumer"].add("portal.worker_health:HeartbeatStep")


@signals.task_prerun.connect
def _database_connections(sender: Any = None, **_: Any) -> None:
    """Each task starts like a web request: drop a connection that is broken or older than CONN_MAX_AGE
    (CELERY_DB_REUSE_MAX keeps Celery from closing it around every task). Not for eager calls, which run
    in the caller's connection and maybe inside its transaction (as Celery's own fixup does)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.task_postrun.connect
def _release_thread_connections(sender: Any = None, **_: Any) -> None:
    """A task run in a pool thread (`--pool threads`, the tests' in-process worker) closes its connections
    afterwards, as Celery's fixup did before CELERY_DB_REUSE_MAX: an idle thread must not hold a session.
    Prefork children and the solo pool run tasks in their main thread and keep theirs."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    if threading.current_thread() is threading.main_thread():
        return
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()
