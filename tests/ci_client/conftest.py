"""Fixtures for the CI client: the governance cast, a service account for CI, and the client run as CI runs it
(a subprocess whose environment holds only PATH, PORTAL_URL and PORTAL_TOKEN)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from catalog.services.service_accounts import service_account_create
from tests import environment as env
from tests.governance.conftest import people, synced  # noqa: F401  (the cast and the synced demo catalog)

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client" / "feature_portal.py"
PROJECT = "employee_attrition"
REF = "acme/features@add-tenure-years"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def one_line_error(self) -> str:
        """The run failed with exactly one line on stderr and no traceback."""
        assert "Traceback" not in self.stderr and "Traceback" not in self.stdout, self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        return lines[0]


def run_client(*args: str, url: str, token: str, timeout: float = 300) -> Run:
    """The client as a CI job runs it: a fresh interpreter, nothing but PATH, PORTAL_URL and PORTAL_TOKEN."""
    environ = {"PATH": os.environ["PATH"], "PORTAL_URL": url, "PORTAL_TOKEN": token}
    done = subprocess.run(
        [sys.executable, str(CLIENT), *args],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def ci_account(people: dict[str, User]) -> tuple[User, str]:  # noqa: F811
    """A service account for CI (operator role: it plans and applies) and its token."""
    account, _, raw = service_account_create(
        actor=people["admin"], name="ci-people-features", role="operator", scopes=["read", "propose", "operate"]
    )
    return account, raw


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the demo repo as a CI job checks it out (definitions, not the generated data)."""
    dst = tmp_path / "checkout" / "feature_repo"
    shutil.copytree(env.DEMO_REPO, dst, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (dst / ".git" / "hooks").mkdir(parents=True)
    (dst / ".git" / "HEAD").write_text("ref: refs/heads/add-tenure-years\n")
    # never sent: the portal would refuse a .py under a dotted directory name
    (dst / ".git" / "hooks" / "post_checkout.py").write_text("raise SystemExit('not part of the repo')\n")
    return dst


def edit(repo: Path, old: str, new: str) -> None:
    """Change one line of the checkout's features.py, as a commit would."""
    path = repo / "features.py"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


ClientRunner = Callable[..., Run]
