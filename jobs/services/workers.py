"""Worker liveness the web can read: each worker's consumer writes a heartbeat row every few seconds."""

from __future__ import annotations

import os
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone

from jobs.models import WorkerHeartbeat

ALIVE_SECONDS = 60  # a worker whose last heartbeat is older is not counted as alive


def worker_heartbeat_record(*, hostname: str) -> None:
    """This worker is alive now (called from its consumer's timer)."""
    close_old_connections()  # the timer's thread keeps its own connection: replace it when broken or old
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname[:255], defaults={"pid": os.getpid(), "last_seen": timezone.now()}
    )


def workers_alive() -> list[WorkerHeartbeat]:
    """The workers that reported within ALIVE_SECONDS, most recent first."""
    since = timezone.now() - timedelta(seconds=ALIVE_SECONDS)
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=since).order_by("-last_seen"))
