"""Fixtures for the jobs tests: a real HTTP server standing in for the Slack-compatible webhook, and a
Celery worker in its own process (one a test can SIGKILL)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def worker_process(environ: dict[str, str]) -> subprocess.Popen[bytes]:
    """A real Celery worker (solo pool) in a subprocess with `environ`, consuming this test worker's queue."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--queues",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Receiver(BaseHTTPRequestHandler):
    """Records every JSON body POSTed to it; answers `status`."""

    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def webhook(settings: Any) -> Iterator[type[Receiver]]:
    """PORTAL_WEBHOOK_URL points at a local HTTP server; the test reads `webhook.received`."""
    Receiver.received = []
    Receiver.status = 200
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PORTAL_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/secret"
    yield Receiver
    server.shutdown()
