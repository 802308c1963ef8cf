"""The Dockerfile (no Docker engine here, so it is parsed, not built): multi-stage, pinned, non-root.

Also: the image the manifests run is one image for web, worker, beat, migrations and `feast`, and the
commands they run exist in the virtualenv the image installs from requirements/lock.txt.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.test_manifests import by_kind, containers, render, workloads

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def resolved_from_images() -> list[tuple[str, str]]:
    """(image, stage name) per FROM, with ARG defaults substituted."""
    args: dict[str, str] = {}
    stages = []
    for word, rest in instructions():
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args.setdefault(key, value)
        if word == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stage = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else ""
            stages.append((image, stage))
    return stages


def test_multi_stage_with_pinned_slim_python_bases() -> None:
    stages = resolved_from_images()
    assert len(stages) >= 2, "multi-stage: build tools must not reach the runtime image"
    names = [s for _, s in stages]
    assert "build" in names and names[-1] == "runtime"
    for image, _ in stages:
        repo, _, tag = image.partition(":")
        assert repo == "python" and tag.startswith("3.11") and "slim" in tag, image
        assert tag != "latest" and re.match(r"3\.11\.\d+-slim", tag), f"{image}: pin the patch version"
    copies_from_build = [rest for word, rest in instructions() if word == "COPY" and rest.startswith("--from=build")]
    assert any("/opt/venv" in c for c in copies_from_build) and any("/app" in c for c in copies_from_build)
    assert ":latest" not in (ROOT / "Dockerfile").read_text()


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) > 0, f"USER {users[-1]}: use a numeric non-root uid (runAsNonRoot checks it)"
    # The manifests run as the same uid.
    docs = [d for d in yaml.safe_load_all(render("prod")) if d]
    for doc in workloads(docs):
        spec: dict[str, Any] = (
            doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            if doc["kind"] == "CronJob"
            else doc["spec"]["template"]["spec"]
        )
        if any(c["image"].startswith("registry.example.com/mlops/feature-portal:") for c in containers(doc)):
            assert spec["securityContext"]["runAsUser"] == int(user), doc["metadata"]["name"]


def test_installs_the_lock_and_collects_static_with_a_dummy_key() -> None:
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert any("requirements/lock.txt" in c for c in copies)
    assert re.search(r"pip install [^&]*-r /tmp/lock.txt", runs)
    collect = next(r for w, r in instructions() if w == "RUN" and "collectstatic" in r)
    assert "DJANGO_SECRET_KEY=" in collect and "--noinput" in collect
    env_text = " ".join(rest for word, rest in instructions() if word == "ENV")
    assert "DJANGO_STATIC_ROOT=/app/staticfiles" in env_text
    assert "DJANGO_SECRET_KEY" not in env_text, "no secret may be baked into the image"


def test_one_image_runs_every_process_the_manifests_start() -> None:
    docs = [d for d in yaml.safe_load_all(render("prod")) if d]
    portal_images = {
        c["image"]
        for d in workloads(docs)
        for c in containers(d)
        if d["metadata"]["labels"].get("app.kubernetes.io/name") in {"portal", "feast"}
    }
    assert len(portal_images) == 1
    entry = {c["command"][0] for d in workloads(docs) for c in containers(d) if c["image"] in portal_images}
    assert entry == {"gunicorn", "celery", "python", "feast", "/bin/sh"}
    venv_bin = ROOT / ".venv" / "bin"
    for exe in entry - {"/bin/sh", "python"}:
        assert (venv_bin / exe).exists(), f"{exe} is not installed by requirements/lock.txt"
    cmd = next(rest for word, rest in instructions() if word == "CMD")
    assert shlex.split(cmd.strip("[]").replace(",", " "))[0].strip('"') == "gunicorn"
    assert by_kind(docs, "Deployment")["portal-web"]


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for path in (".git", ".venv", "var", ".env", "feature_repo/data"):
        assert path in ignored, path
