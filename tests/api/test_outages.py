"""Outages of the cache's Redis: the API keeps answering (the rate limiter fails open and says so in the log).

The test starts a Redis of its own on a free port (Debian's redis-server), points the cache at it, and stops
it mid-test: the shared Redis is never touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from rest_framework.test import APIClient

from catalog.services.tokens import api_token_create


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: Any) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    server = shutil.which("redis-server")
    assert server, "redis-server (Debian's redis package) is on every development and CI machine"
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.2).ping()
            break
        except redis.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "the test's own redis-server did not start"
            time.sleep(0.05)
    yield process, port
    process.kill()
    process.wait(timeout=10)


@pytest.mark.django_db
def test_the_api_keeps_answering_while_the_caches_redis_is_down(
    own_redis: tuple[subprocess.Popen[bytes], int], settings: Any, viewer: Any, caplog: Any, monkeypatch: Any
) -> None:
    from catalog.api import throttling

    monkeypatch.setattr(throttling, "_last_warning", 0.0)  # the warning is said once a minute per process
    process, port = own_redis
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    caches["default"].clear()
    _, raw = api_token_create(actor=viewer, user=viewer, name="t", scopes=["read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/projects/").status_code == 200
    assert redis.Redis(port=port).keys("*throttle*")  # the limiter really counts in this Redis
    process.kill()
    process.wait(timeout=10)
    with caplog.at_level("WARNING", logger="catalog.api.throttling"):
        response = api.get("/api/v1/projects/")
    assert response.status_code == 200, response.content
    assert "rate limiting is off: the cache is unreachable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_pages_and_the_api_answer_503_while_postgresql_is_unreachable(viewer: Any) -> None:
    """The portal's database connection points at a port where no PostgreSQL listens (the shared server is
    never stopped): pages and the API answer 503 with a short message; then it comes back."""
    from django.db import connection
    from django.test import Client

    _, raw = api_token_create(actor=viewer, user=viewer, name="t", scopes=["read"])
    page, api = Client(raise_request_exception=False), APIClient(raise_request_exception=False)
    page.force_login(viewer)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert page.get("/").status_code == 200 and api.get("/api/v1/projects/").status_code == 200
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(_free_port())
    try:
        down = page.get("/")
        assert down.status_code == 503 and b"database cannot be reached" in down.content
        down_api = api.get("/api/v1/projects/")
        assert down_api.status_code == 503 and down_api.json()["error"]["code"] == "unavailable"
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert page.get("/").status_code == 200
