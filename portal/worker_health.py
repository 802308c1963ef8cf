"""A Celery worker liveness heartbeat: a file the worker's own event loop touches every few seconds.

Kubernetes' liveness probe for the worker checks the file's age (`python -m portal.worker_health
check PATH MAX_AGE`: no Django, no broker round trip) instead of `celery inspect ping`, which starts a full
Celery/Django process and broadcasts over the broker on every probe. The file is touched by a timer
on the consumer's event loop, so it goes stale when that loop is stuck, not merely when the process
is alive. The step is restarted with the consumer after a broker reconnection.

The file is written when `PORTAL_WORKER_HEARTBEAT_PATH` is set; every heartbeat also updates the worker's
`WorkerHeartbeat` row, which /readyz and the dashboard read (the web cannot see a worker pod's files). The same check serves beat's liveness
probe on its schedule file, which beat rewrites every few minutes while it ticks.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from celery import bootsteps

INTERVAL_SECONDS = 10.0
MAX_AGE_SECONDS = 120.0


def _touch(path: Path) -> None:
    path.touch()
    os.utime(path)


def _beat(path: Path | None, hostname: str) -> None:
    """One heartbeat: the file (for the pod's liveness probe) and the row /readyz and the dashboard read."""
    if path is not None:
        _touch(path)
    try:
        from jobs.services.workers import worker_heartbeat_record

        worker_heartbeat_record(hostname=hostname or f"worker-{os.getpid()}")
    except Exception:
        logging.getLogger(__name__).warning("could not record the worker heartbeat", exc_info=True)


class HeartbeatStep(bootsteps.StartStopStep):
    """Touch PORTAL_WORKER_HEARTBEAT_PATH from the consumer's event loop while the consumer runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.entry: Any = None

    def start(self, parent: Any) -> None:
        from django.conf import settings

        path_text: str = getattr(settings, "PORTAL_WORKER_HEARTBEAT_PATH", "")
        beat = partial(_beat, Path(path_text) if path_text else None, str(getattr(parent, "hostname", "") or ""))
        beat()
        self.entry = parent.timer.call_repeatedly(INTERVAL_SECONDS, beat)

    def stop(self, parent: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None


def check(pattern: str, max_age: float = MAX_AGE_SECONDS) -> int:
    """0 if a file matching `pattern` (a path or a glob) was modified within max_age seconds, else 1."""
    paths = glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
    ages: list[float] = []
    for path in paths:
        try:
            ages.append(time.time() - os.path.getmtime(path))
        except OSError:
            continue
    if not ages:
        sys.stderr.write(f"heartbeat {pattern}: no such file\n")
        return 1
    if min(ages) > max_age:
        sys.stderr.write(f"heartbeat {pattern} is {min(ages):.0f}s old (limit {max_age:.0f}s)\n")
        return 1
    return 0


if __name__ == "__main__":  # python -m portal.worker_health check PATH_OR_GLOB [MAX_AGE_SECONDS]
    if len(sys.argv) not in {3, 4} or sys.argv[1] != "check":
        sys.exit("usage: python -m portal.worker_health check PATH_OR_GLOB [MAX_AGE_SECONDS]")
    sys.exit(check(sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else MAX_AGE_SECONDS))
