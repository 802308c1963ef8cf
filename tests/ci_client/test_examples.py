"""The CI examples users copy (examples/ci/*.yml, k8s/examples/*.yaml) are valid YAML, every client command they
run parses with the client's own argument parser, and those commands run as written against a live portal."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.models import ChangeRequest
from client import feature_portal
from tests.ci_client.conftest import CLIENT, ROOT

GITHUB = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
K8S_JOB = ROOT / "k8s" / "examples" / "feature-portal-apply-job.yaml"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def github_commands() -> Iterator[tuple[str, dict[str, str]]]:
    """(shell command, its env with ${{ }} expressions left in) of every step that runs the client."""
    workflow = yaml.safe_load(GITHUB.read_text())
    assert set(workflow["on"]) == {"pull_request", "push"}
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "feature_portal.py" in step.get("run", ""):
                yield step["run"], {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}


def gitlab_commands() -> Iterator[tuple[str, dict[str, str]]]:
    pipeline = yaml.safe_load(GITLAB.read_text())
    for name, job in pipeline.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        assert job["stage"] in pipeline["stages"], name
        environ = dict(pipeline.get("variables", {}))
        for line in job["script"]:
            if line.startswith("export PORTAL_TOKEN="):
                environ["PORTAL_TOKEN"] = line.split("=", 1)[1].strip('"')
            if "feature_portal.py" in line:
                yield line.removesuffix(" || status=$?"), environ


def k8s_command() -> tuple[list[str], dict[str, str]]:
    (job,) = [d for d in yaml.safe_load_all(K8S_JOB.read_text()) if d]
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    environ = {e["name"]: e.get("value", "<secret>") for e in container["env"]}
    return [*container["command"], *container["args"]], environ


def client_args(command: str) -> list[str]:
    words = shlex.split(command)
    return words[next(i for i, w in enumerate(words) if w.endswith("feature_portal.py")) + 1 :]


def test_examples_are_yaml_and_run_the_clients_real_commands_and_flags() -> None:
    used = set()
    commands = [c for c, _ in [*github_commands(), *gitlab_commands()]]
    k8s_words, _ = k8s_command()
    commands.append(shlex.join(k8s_words))
    for command in commands:
        args = client_args(command)
        try:
            parsed = feature_portal.parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"the client does not accept: {command}")
        used.add(parsed.command)
    assert used == {"plan", "apply"}
    assert len(commands) == 5  # GitHub plan + apply, GitLab plan + apply, the Kubernetes Job's apply


def test_a_wrong_flag_would_be_caught() -> None:
    """The check above can fail: a flag the client does not have is refused."""
    with pytest.raises(SystemExit):
        feature_portal.parser().parse_args(["plan", "repo", "--project", "p", "--ref", "a@b", "--no-such-flag"])


@pytest.fixture
def ci_workspace(tmp_path: Path) -> Path:
    """A feature repo's checkout as the examples expect it: the client vendored at ci/, the repo at feature_repo/."""
    from tests import environment as env

    workspace = tmp_path / "workspace"
    shutil.copytree(env.DEMO_REPO, workspace / "feature_repo", ignore=shutil.ignore_patterns("data", "__pycache__"))
    (workspace / "ci").mkdir()
    shutil.copy(CLIENT, workspace / "ci" / "feature_portal.py")
    return workspace


def run_shell(command: str, environ: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # `python` is a Python 3.10+, as in the images
    return subprocess.run(
        ["bash", "-c", command],
        env={"PATH": path, **environ},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_examples_commands_run_against_a_live_portal(
    live_server: Any,
    synced: feast_gateway.RepoRef,
    ci_account: tuple[User, str],
    ci_workspace: Path,
    celery_worker: Any,  # the portal plans an upload in a worker's plan job
) -> None:
    _, token = ci_account
    values = {
        "vars.FEATURE_PORTAL_URL": live_server.url,
        "secrets.FEATURE_PORTAL_PLAN_TOKEN": token,
        "secrets.FEATURE_PORTAL_APPLY_TOKEN": token,
        "github.head_ref": "add-tenure-years",
        "github.event.pull_request.head.sha": "a" * 40,
        "github.event.pull_request.title": "Retype tenure",
    }
    ci = {  # what GitHub and GitLab set in every job
        "GITHUB_REPOSITORY": "acme/features",
        "GITHUB_REF_NAME": "main",
        "GITHUB_SHA": "b" * 40,
        "CI_PROJECT_PATH": "acme/features",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "add-tenure-years",
        "CI_MERGE_REQUEST_TITLE": "Retype tenure",
        "CI_COMMIT_SHA": "c" * 40,
        "CI_COMMIT_BRANCH": "main",
        "FEATURE_PORTAL_URL": live_server.url,
        "FEATURE_PORTAL_PLAN_TOKEN": token,
        "FEATURE_PORTAL_APPLY_TOKEN": token,
    }

    def resolved(environ: dict[str, str]) -> dict[str, str]:
        """The job's environment as the CI system gives it: ${{ }} expressions and $VARIABLE references filled."""

        def expression(match: re.Match[str]) -> str:
            assert match.group(1) in values, f"the test has no value for ${{{{ {match.group(1)} }}}}"
            return values[match.group(1)]

        out = {k: EXPRESSION.sub(expression, str(v)) for k, v in environ.items()}
        return {**ci, **{k: re.sub(r"\$(\w+)", lambda m: ci[m.group(1)], v) for k, v in out.items()}}

    for command, environ in [*github_commands(), *gitlab_commands()]:
        done = run_shell(command, resolved(environ), ci_workspace)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if " plan " in command:
            assert "nothing to plan" in done.stdout and "nothing to plan" in (ci_workspace / "plan.md").read_text()
            (ci_workspace / "plan.md").unlink()
        else:
            assert "Nothing to apply" in done.stdout, done.stdout

    words, environ = k8s_command()
    words = [
        str(CLIENT) if w.endswith("feature_portal.py") else w.replace("/work/checkout", str(ci_workspace))
        for w in words
    ]
    words[0] = sys.executable
    job = run_shell(shlex.join(words), {**environ, "PORTAL_URL": live_server.url, "PORTAL_TOKEN": token}, ci_workspace)
    assert job.returncode == 0 and "Nothing to apply" in job.stdout, (job.stdout, job.stderr)
    assert not ChangeRequest.objects.exists()
