"""manage.py bootstrap_demo: make a fresh install usable. Safe to run again: it reuses what exists.

1. Generate the demo data (demo repo only) if it is missing.
2. `feast apply` each governed repo whose registry does not exist yet (later changes go through the portal).
3. Create one demo user per role.
4. Sync the catalog.
5. Materialize views that were never materialized, with the portal's own materialization (so each
   view's `materialize_filter` tag is applied), recorded in the jobs ledger.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog import feast_gateway
from catalog.exceptions import RegistryUnavailable
from catalog.models import FeatureView, Team
from catalog.permissions import ROLES
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from jobs.services import job_run_execute
from jobs.services.materialization import materialization_params, materialization_run

DEMO_USERS = [
    ("viewer", ["viewer"]),
    ("proposer", ["proposer"]),
    ("approver", ["approver"]),
    ("approver2", ["approver"]),
    ("operator", ["operator"]),
    ("admin", ["admin"]),
]
# Owner teams of the demo repo (its `team` tags), so change requests can gather team approvals: a
# people-analytics change needs `approver`; an hr-data-platform change needs `approver2`.
DEMO_TEAMS = {"approver": "people-analytics", "approver2": "hr-data-platform", "proposer": "people-analytics"}


def demo_credentials_path(profile: str | None = None, database: dict[str, Any] | None = None) -> Path:
    """The demo users' passwords file: one per profile and database, so that running the services profile in
    the same checkout (same var/) never rewrites the quickstart's logins, nor one database's another's."""
    profile = profile or settings.PORTAL_PROFILE
    database = database or settings.DATABASES["default"]
    if "sqlite" in str(database.get("ENGINE", "")):
        where = Path(str(database.get("NAME", ""))).stem
    else:
        where = "-".join(str(database.get(k) or "") for k in ("HOST", "PORT", "NAME") if database.get(k))
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{profile}-{where}").strip("._-")
    return Path(settings.VAR_DIR) / f"demo-credentials.{label}.txt"


def demo_credentials_write(path: Path, created: list[tuple[str, str]]) -> list[str]:
    """Record newly created demo users' passwords (mode 0600), keeping the file's other users; the new lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    known: dict[str, str] = {}
    if path.exists():  # keep other users' lines; replace the ones created now
        for line in path.read_text().splitlines():
            if line.split():
                known[line.split()[0]] = line
    lines = [f"{u:<10} {p}" for u, p in created]
    known.update({line.split()[0]: line for line in lines})
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(known.values()) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return lines


class Command(BaseCommand):
    help = "Bootstrap the demo: data, feast apply, demo users, catalog sync, first materialization."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--employees", type=int, default=1000, help="demo data size (default 1000)")
        parser.add_argument("--skip-materialize", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        demo_repo = (settings.BASE_DIR / "feature_repo").resolve()
        for repo in feast_gateway.governed_repos():
            if repo.path == demo_repo and not (repo.path / "data" / "employee_attrition.parquet").exists():
                self._run(
                    [sys.executable, "-m", "feature_repo.generate", "--employees", str(options["employees"])],
                    "generating demo data",
                )
            try:
                feast_gateway.registry_fingerprint(repo)
                self.stdout.write(
                    f"registry of {repo.path.name} exists: not re-applying (changes go through the portal)"
                )
            except RegistryUnavailable:
                self._feast(repo, ["apply"], f"feast apply ({repo.yaml_path.name})")
        self._users()
        for run in registry_sync(trigger="bootstrap"):
            if run.status == "failed":
                raise CommandError(f"catalog sync failed: {run.error}")
            self.stdout.write(f"catalog sync: {run.status} (+{run.added} ~{run.changed} -{run.removed})")
        if (
            not options["skip_materialize"]
            and FeatureView.objects.filter(
                online=True, last_materialized_end__isnull=True, subkind__in=["batch", "stream"]
            ).exists()
        ):
            # The portal's own materialization, not `feast materialize-incremental`: it applies each
            # view's `materialize_filter` tag (only active employees reach the online store), records the
            # ledger and syncs the catalog afterwards.
            self.stdout.write("first materialization ...")
            finished = job_run_execute(
                job_run_id=None,
                kind=JobRun.Kind.MATERIALIZE,
                params=materialization_params(project=None, views=None, mode="incremental"),
                celery_task_id="",
                body=materialization_run,
                trigger="bootstrap",
            )
            if finished is None or finished.status != JobRun.Status.SUCCEEDED:
                raise CommandError(f"first materialization failed: {finished.error if finished else 'not run'}")
            for view in finished.result.get("views", []):
                self.stdout.write(f"  {view['view']}: {view['rows_written']} rows ({view['rows_filtered']} filtered)")

    def _run(self, command: list[str], what: str) -> None:
        self.stdout.write(f"{what} ...")
        result = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CommandError(f"{what} failed:\n{result.stderr[-3000:]}")

    def _feast(self, repo: feast_gateway.RepoRef, args: list[str], what: str) -> None:
        self.stdout.write(f"{what} ...")
        result = feast_gateway.run_cli(repo, args)
        if result.returncode != 0:
            raise CommandError(f"{what} failed:\n{result.stderr[-3000:]}")

    def _users(self) -> None:
        for role in ROLES:
            Group.objects.get_or_create(name=role)
        shared = os.environ.get("PORTAL_DEMO_PASSWORD", "")
        created: list[tuple[str, str]] = []
        for username, roles in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            password = shared or secrets.token_urlsafe(9)
            user = User.objects.create_user(
                username=username,
                password=password,
                email=f"{username}@example.com",
                is_staff=username == "admin",
                is_superuser=username == "admin",
            )
            user.groups.set(Group.objects.filter(name__in=roles))
            if username in DEMO_TEAMS:
                user.teams.add(Team.objects.get_or_create(name=DEMO_TEAMS[username])[0])
            created.append((username, password))
        credentials = demo_credentials_path()
        if created:
            lines = demo_credentials_write(credentials, created)
            self.stdout.write(f"demo users (username / password) — shown once, also kept in {credentials}:")
            for line in lines:
                self.stdout.write(f"  {line}")
        else:
            self.stdout.write(f"demo users exist (passwords: {credentials} or PORTAL_DEMO_PASSWORD)")
