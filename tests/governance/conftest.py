"""Fixtures for governance tests: a synced demo catalog, teams, and people in several roles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from catalog import feast_gateway
from catalog.models import CatalogObject, ChangeRequest, ModelConsumer, Project, Team
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from tests.governance.hostile_cases import EscapeTargets, planted_escape_targets
from tests.jobs.conftest import webhook  # noqa: F401  (a real HTTP receiver for notifications)

PROJECT = "employee_attrition"
# An uploaded archive is parsed and planned by a worker's plan job: tests that upload run the `celery_worker`
# fixture and post here, so the answer is the finished propose (201/200, or the job's error) as before.
PROPOSE_UPLOAD = "/api/v1/change-requests/?wait=30"


def make_user(username: str, *roles: str, teams: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username=username, password="correct horse battery")
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    for team in teams:
        user.teams.add(Team.objects.get_or_create(name=team)[0])
    return user


@pytest.fixture
def escape_targets(settings: Any) -> Iterator[EscapeTargets]:
    """A planted secret in the portal's var/ directory and a fresh token for the files escapes try to write."""
    with planted_escape_targets(Path(settings.VAR_DIR), Path(settings.BASE_DIR)) as targets:
        yield targets


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef, db: None) -> feast_gateway.RepoRef:
    """The demo registry, synced into the catalog (teams people-analytics and hr-data-platform exist)."""
    registry_sync(project=PROJECT, trigger="test")
    assert Project.objects.filter(name=PROJECT).exists()
    return demo_repo


@pytest.fixture
def people(synced: feast_gateway.RepoRef) -> dict[str, User]:
    """An author, two approvers in the owning team, one outside it, an operator and an admin."""
    return {
        "author": make_user("pat", "proposer", teams=("people-analytics",)),
        "approver1": make_user("amy", "approver", teams=("people-analytics",)),
        "approver2": make_user("abe", "approver", teams=("people-analytics",)),
        "hr_approver": make_user("hal", "approver", teams=("hr-data-platform",)),
        "outside_approver": make_user("oli", "approver"),
        "operator": make_user("opa", "operator"),
        "admin": make_user("ada_admin", "admin"),
        "viewer": make_user("vic", "viewer"),
    }


def register_model(service: str = "attrition_model_v1", name: str = "attrition-clf") -> ModelConsumer:
    svc = CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name=service)
    return ModelConsumer.objects.create(service=svc, name=name, version="3", owner="people-analytics@example.com")


def wait_for(cr: ChangeRequest, *states: str, timeout: float = 90) -> ChangeRequest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cr.refresh_from_db()
        if cr.status in states:
            return cr
        time.sleep(0.2)
    job = JobRun.objects.filter(pk=cr.apply_job_id).first()
    raise AssertionError(f"CR-{cr.pk} still {cr.status} after {timeout}s (job: {job and (job.status, job.error)})")


def wait_for_catalog(cr: ChangeRequest, timeout: float = 90) -> JobRun:
    """After an apply: wait for the catalog sync job it queued (it links the new versions to the request)."""
    cr.refresh_from_db()
    job_id = cr.apply_result.get("catalog_sync_job")
    assert job_id, cr.apply_result
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = JobRun.objects.get(pk=job_id)
        if job.is_terminal:
            assert job.status == "succeeded", job.error
            return job
        time.sleep(0.2)
    raise AssertionError(f"catalog sync job {job_id} did not finish in {timeout}s")
