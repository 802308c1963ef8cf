"""Demo logins: one credentials file per profile and database, so another profile run in the same checkout
(the same var/) never rewrites the quickstart's passwords."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from portal.management.commands.bootstrap_demo import Command, demo_credentials_path, demo_credentials_write

QUICKSTART_DB = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/portal/var/portal.sqlite3"}
SERVICES_DB = {"ENGINE": "django.db.backends.postgresql", "NAME": "portal", "HOST": "127.0.0.1", "PORT": 5432}


def test_each_profile_and_database_has_its_own_file(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    quickstart = demo_credentials_path("quickstart", QUICKSTART_DB)
    services = demo_credentials_path("services", SERVICES_DB)
    other_db = demo_credentials_path("services", {**SERVICES_DB, "NAME": "portal_staging"})
    assert quickstart == tmp_path / "demo-credentials.quickstart-portal.txt"
    assert services == tmp_path / "demo-credentials.services-127.0.0.1-5432-portal.txt"
    assert len({quickstart, services, other_db}) == 3

    demo_credentials_write(quickstart, [("viewer", "quick-pass"), ("admin", "quick-admin")])
    demo_credentials_write(services, [("viewer", "services-pass")])  # the services profile's own users
    assert quickstart.read_text() == "viewer     quick-pass\nadmin      quick-admin\n"
    assert services.read_text() == "viewer     services-pass\n"
    # A user created later in the same database joins its file; the others' lines stay.
    demo_credentials_write(quickstart, [("operator", "op-pass")])
    assert quickstart.read_text().splitlines() == [
        "viewer     quick-pass",
        "admin      quick-admin",
        "operator   op-pass",
    ]
    assert stat.S_IMODE(quickstart.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_bootstrap_writes_the_running_databases_file(settings: Any, tmp_path: Path, monkeypatch: Any) -> None:
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("PORTAL_DEMO_PASSWORD", "demo-pass-123")
    command = Command()
    command._users()
    path = demo_credentials_path()
    assert path.name.startswith(f"demo-credentials.{settings.PORTAL_PROFILE}-") and path.name != "demo-credentials.txt"
    assert "admin      demo-pass-123" in path.read_text().splitlines()
    assert User.objects.get(username="admin").check_password("demo-pass-123")
    assert not (tmp_path / "demo-credentials.txt").exists()
