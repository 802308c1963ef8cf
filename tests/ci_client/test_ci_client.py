"""The CI client (client/feature_portal.py) driven as a CI job drives it: a subprocess with only PORTAL_URL and a
service account's token in its environment, against a live portal, a real Celery worker and the real Feast
registry. Plan on a branch (nothing, breaking, a second revision, the same content again), apply on merge,
`feast registry-dump` shows the change; verify a pinned contract; and the bad input that must end in one line."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.models import AuditEvent, ChangeRequest
from catalog.services.change_requests import change_request_approve
from tests.ci_client.conftest import PROJECT, REF, edit, run_client
from tests.governance.conftest import register_model, wait_for_catalog

RETYPE = ('Field(name="tenure", dtype=Float32,', 'Field(name="tenure", dtype=Int64,')
DESCRIBE = ('description="Years since hire."', 'description="Whole years since hire."')


def contract_hash(url: str, token: str, service: str) -> str:
    request = urllib.request.Request(
        f"{url}/api/v1/projects/{PROJECT}/feature-services/{service}/contract/",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["hash"])


def approve_all(cr: ChangeRequest, people: dict[str, User]) -> ChangeRequest:
    """Humans approve the current revision: the owning teams' approvers, as many as the request needs."""
    teams = {t["name"] for t in cr.required_teams}
    reviewers = [people["hr_approver"]] if "hr-data-platform" in teams else []
    reviewers += [people["approver1"], people["approver2"]]
    for reviewer in reviewers:
        cr.refresh_from_db()
        if cr.status != "submitted":
            break
        change_request_approve(cr=cr, actor=reviewer, revision=cr.revision)
    cr.refresh_from_db()
    assert cr.status == "approved", (cr.status, cr.required_teams)
    return cr


def test_a_branch_is_planned_revised_approved_and_applied_by_the_ci_client(
    live_server: Any,
    people: dict[str, User],
    synced: feast_gateway.RepoRef,
    ci_account: tuple[User, str],
    checkout: Path,
    celery_worker: Any,
    tmp_path: Path,
) -> None:
    account, token = ci_account
    url = live_server.url
    register_model()  # attrition-clf reads attrition_model_v1
    pinned = contract_hash(url, token, "attrition_model_v1")
    plan = ["plan", str(checkout), "--project", PROJECT, "--ref", REF]

    # An unchanged checkout plans nothing: exit 0, no request.
    unchanged = run_client(*plan, "--sha", "a" * 40, url=url, token=token)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "nothing to plan" in unchanged.stdout
    assert not ChangeRequest.objects.exists()

    # A breaking edit: exit 1, Markdown naming the broken service and model; one request for the branch.
    edit(checkout, *RETYPE)
    comment = tmp_path / "comment.md"
    first = run_client(*plan, "--sha", "b" * 40, "--markdown-out", str(comment), url=url, token=token)
    assert first.returncode == 1, first.stderr
    assert comment.read_text() == first.stdout
    cr = ChangeRequest.objects.get()
    assert (cr.external_repo, cr.external_branch, cr.external_sha) == ("acme/features", "add-tenure-years", "b" * 40)
    assert (cr.author, cr.revision, cr.status, cr.severity) == (account, 1, "submitted", "breaking")
    assert f"CR-{cr.pk} revision 1" in first.stdout and "🔴 breaking" in first.stdout
    assert "`attrition_model_v1`" in first.stdout  # the service it breaks
    assert "model `attrition-clf` version 3 (on `attrition_model_v1`" in first.stdout  # the model
    assert "`view.dtype_changed`" in first.stdout and "still needed: 2 more approval(s)" in first.stdout
    change_request_approve(cr=cr, actor=people["approver1"], revision=1)

    # A second run on the same branch, with one more change: a new revision of the same request.
    edit(checkout, *DESCRIBE)
    second = run_client(*plan, "--sha", "c" * 40, url=url, token=token)
    assert second.returncode == 1, second.stderr
    cr = ChangeRequest.objects.get()
    assert (cr.pk, cr.revision, cr.external_sha) == (cr.pk, 2, "c" * 40)
    assert f"CR-{cr.pk} revision 2" in second.stdout
    assert "approvals given to earlier revisions no longer count" in second.stdout
    assert "amy (approve) on revision 1: superseded, not counted" in second.stdout

    # The same content again (a commit that touched something else): no new revision.
    again = run_client(*plan, "--sha", "d" * 40, url=url, token=token)
    assert again.returncode == 1, again.stderr
    assert "no new revision" in again.stdout
    assert ChangeRequest.objects.get().revision == 2

    status = run_client("status", "--project", PROJECT, "--ref", REF, url=url, token=token)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"CR-{cr.pk} revision 2: submitted (breaking)")

    # Merged before anyone approved: apply fails clearly and starts nothing.
    merge = ["apply", str(checkout), "--project", PROJECT, "--ref", "acme/features@main", "--sha", "e" * 40]
    early = run_client(*merge, url=url, token=token)
    assert early.returncode == 1
    assert f"CR-{cr.pk} is submitted, not approved" in early.one_line_error()
    assert ChangeRequest.objects.get().status == "submitted" and ChangeRequest.objects.count() == 1

    # Two approvals on revision 2, then the plan says so and exits 0; apply on merge applies it.
    approve_all(cr, people)
    approved = run_client(*plan, "--sha", "d" * 40, url=url, token=token)
    assert approved.returncode == 0, approved.stderr
    assert "approved: it is applied when this branch is merged" in approved.stdout
    applied = run_client(*merge, "--timeout", "240", url=url, token=token)
    assert applied.returncode == 0, (applied.stdout, applied.stderr)
    applied_line = next(line for line in applied.stdout.splitlines() if line.startswith(f"CR-{cr.pk} applied: "))
    assert "feature_view:employee_features" in applied_line.split(": ", 1)[1].split(", ")
    cr.refresh_from_db()
    assert cr.status == "applied"
    wait_for_catalog(cr)
    dump = feast_gateway.registry_dump_json(synced)
    view = next(v for v in dump["featureViews"] if v["spec"]["name"] == "employee_features")
    tenure = next(f for f in view["spec"]["features"] if f["name"] == "tenure")
    assert (tenure["valueType"], tenure["description"]) == ("INT64", "Whole years since hire.")

    # Everything CI did is attributed to the service account.
    ci_actions = set(AuditEvent.objects.filter(actor=account).values_list("action", flat=True))
    assert {"change_request.created", "change_request.revised", "change_request.commit_recorded"} <= ci_actions
    assert {"change_request.apply_started"} <= ci_actions | set(
        AuditEvent.objects.filter(actor_name=account.username).values_list("action", flat=True)
    )

    # Merging again (a re-run) applies nothing more; the model's pinned contract no longer matches.
    rerun = run_client(*merge, url=url, token=token)
    assert rerun.returncode == 0, rerun.stderr
    assert "Nothing to apply" in rerun.stdout
    verify = ["verify", "--project", PROJECT, "--service", "attrition_model_v1", "--hash"]
    mismatch = run_client(*verify, pinned, url=url, token=token)
    assert mismatch.returncode == 1 and mismatch.stdout.startswith("mismatch:"), mismatch.stdout
    match = run_client(*verify, contract_hash(url, token, "attrition_model_v1"), url=url, token=token)
    assert match.returncode == 0 and match.stdout.startswith("match:"), match.stdout


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: a plan that takes too long."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_input_ends_in_one_line_and_creates_nothing(
    live_server: Any,
    synced: feast_gateway.RepoRef,
    ci_account: tuple[User, str],
    checkout: Path,
    silent_server: str,
    celery_worker: Any,  # the portal plans an upload in a worker's plan job
) -> None:
    _, token = ci_account
    url = live_server.url
    plan = ["plan", str(checkout), "--project", PROJECT, "--ref", REF]
    edit(checkout, *RETYPE)

    wrong_port = run_client(*plan, url=f"http://127.0.0.1:{closed_port()}", token=token)
    assert wrong_port.returncode == 2
    assert "cannot reach the portal" in wrong_port.one_line_error()

    not_the_portal = run_client(*plan, url=f"{url}/no/such/place", token=token)
    assert not_the_portal.returncode == 2
    assert "is PORTAL_URL" in not_the_portal.one_line_error()

    bad_token = run_client(*plan, url=url, token="fpt_00000000_not-a-real-secret")
    assert bad_token.returncode == 2
    assert "PORTAL_TOKEN was refused" in bad_token.one_line_error()

    slow = run_client(*plan, "--timeout", "2", url=silent_server, token=token)
    assert slow.returncode == 2
    assert "did not answer" in slow.one_line_error()

    bad_ref = run_client("plan", str(checkout), "--project", PROJECT, "--ref", "no-branch", url=url, token=token)
    assert bad_ref.returncode == 2
    assert "is not REPO@BRANCH" in bad_ref.one_line_error()

    no_project = run_client("plan", str(checkout), "--project", "nope", "--ref", REF, url=url, token=token)
    assert no_project.returncode == 2
    assert "project 'nope' does not exist" in no_project.one_line_error()

    # A repo that does not parse: the portal refuses it (exit 1, invalid), with the reason in the Markdown.
    broken = checkout / "features.py"
    good = broken.read_text()
    broken.write_text(good + "\nthis is not python(\n")
    unparsable = run_client(*plan, url=url, token=token)
    assert unparsable.returncode == 1
    assert "the portal refused the repo" in unparsable.one_line_error()
    assert "the portal refused this repo" in unparsable.stdout and "Nothing was proposed." in unparsable.stdout
    assert not ChangeRequest.objects.exists()  # no half-created request, whatever failed

    # Re-running after the failures is safe: the fixed repo opens exactly one request.
    broken.write_text(good)
    fixed = run_client(*plan, url=url, token=token)
    assert fixed.returncode == 1, fixed.stderr  # breaking
    assert ChangeRequest.objects.count() == 1
