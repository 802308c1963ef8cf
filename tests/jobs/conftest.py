"""Fixtures for the jobs tests: a real HTTP server standing in for the Slack-compatible webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest


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
