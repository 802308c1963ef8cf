"""Worker liveness the web can read: each worker's consumer writes a heartbeat row every few seconds."""

from __future__ import annotations

import os
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from jobs.models import WorkerHeartbeat

ALIVE_SECONDS = 60  # a worker whose last heartbeat is older is not counted as alive


def worker_heartbeat_record(*, hostname: str) -> None:
    """This worker is alive now (called from its consumer's timer every few seconds). The connection is
    closed afterwards: the timer's thread holds none between beats (a broken one is never reused, and a
    stopped worker leaves no session open on the database)."""
    try:
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname[:255], defaults={"pid": os.getpid(), "last_seen": timezone.now()}
        )
    finally:
        connection.close()


def workers_alive() -> list[WorkerHeartbeat]:
    """The workers that reported within ALIVE_SECONDS, most recent first."""
    since = timezone.now() - timedelta(seconds=ALIVE_SECONDS)
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=since).order_by("-last_seen"))
