"""Outages: of the cache's Redis (the API keeps answering: the rate limiter fails open and says so in the log)
and of the portal's PostgreSQL (pages and the API answer 503, then recover).

The tests start a Redis and a PostgreSQL of their own on free ports (Debian's binaries), point the portal at
them, and stop and restart them mid-test: the shared servers are never touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.db import close_old_connections, connection
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


class OwnPostgres:
    """A PostgreSQL cluster of the test's own (Debian's binaries, run as the `postgres` user: initdb refuses
    root), on a free port, holding a copy of the test database; stopped and started at will. The shared
    server is never touched."""

    def __init__(self, database: str) -> None:
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        assert binaries, "Debian's PostgreSQL server binaries are on every development and CI machine"
        # Not under pytest's tmp_path: the `postgres` user must be able to reach its directory.
        self.root = Path(tempfile.mkdtemp(prefix="fp-own-postgres-"))
        self.bin, self.port = binaries[-1].parent, _free_port()
        shutil.chown(self.root, "postgres")
        self._as_postgres("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        source = connection.settings_dict
        url = f"postgresql://postgres@127.0.0.1:{self.port}"
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database], check=True)
        dump = subprocess.run(
            ["pg_dump", "-h", str(source["HOST"]), "-p", str(source["PORT"]), "-U", "postgres", str(source["NAME"])],
            check=True,
            capture_output=True,
        )
        subprocess.run(["psql", "-q", f"{url}/{database}"], input=dump.stdout, check=True, capture_output=True)

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args], check=True, capture_output=True
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")  # the server must not inherit our pipes (run() would wait on them)
        self._as_postgres("pg_ctl", "-D", str(self.root / "data"), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "stop"],
            check=False,  # already stopped is fine
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_pages_and_the_api_answer_503_while_their_postgresql_is_stopped_then_recover() -> None:
    """The portal's own PostgreSQL goes down mid-test and comes back: 503 with a short message meanwhile (pages
    and the API), then the same session and token work again, with no restart of the portal."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    saved = dict(connection.settings_dict)
    server = OwnPostgres(str(saved["NAME"]))
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(server.port))
    try:
        user = User.objects.create_user("vera")
        user.groups.add(Group.objects.get_or_create(name="viewer")[0])
        _, raw = api_token_create(actor=user, user=user, name="t", scopes=["read"])
        page, api = Client(raise_request_exception=False), APIClient(raise_request_exception=False)
        page.force_login(user)
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert page.get("/").status_code == 200 and api.get("/api/v1/projects/").status_code == 200
        server.stop()
        down = page.get("/")
        assert down.status_code == 503 and b"database cannot be reached" in down.content
        down_api = api.get("/api/v1/projects/")
        assert down_api.status_code == 503 and down_api.json()["error"]["code"] == "unavailable"
        server.start()
        # What Django's request_started signal does before every real request (the test client skips it): a
        # connection that saw errors and no longer answers is closed, so the next query reconnects.
        close_old_connections()
        assert connection.connection is None  # dropped, not reused
        assert page.get("/").status_code == 200 and api.get("/api/v1/projects/").status_code == 200
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        server.remove()
