"""Benchmark: from an uploaded demo repo to its plan, with the upload sandbox's template process, against the
same parse in a fresh interpreter (how every parse ran before the template process).

    python bench/upload.py [--runs 15] [--fresh-runs 5]     (prints one JSON object)
    python bench/upload.py --markdown bench/results/upload.json

The quickstart profile on a copy of the demo repo (SQLite portal database, file registry, bootstrapped as
`make run` does), in a temporary directory. The upload is a zip of the repo folder as it is (definitions,
feature_store.yaml and the parquet data) with one entity's description edited, so its plan is that one safe
change. Steps:
  upload_to_plan_s     change_request_create() with the archive: archive checks, the parse in a fresh jailed
                       child of the template process, the transformations' check, Feast's apply on a scratch
                       copy, checks against the source data, the diff, classification and approvals; p50/p95
  first_upload_s       the first upload in a process, which starts the template (and imports Feast in it)
  parse_template_s     the parse alone, in a jailed child of the template (what each upload pays)
  parse_fresh_s        the same parse, in the same jail, by a fresh `python -I` that imports Feast itself
  template_rss_mib     the template process's resident memory (one per portal process that parses uploads)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROJECT = "employee_attrition"
TARGET_P50_S = 1.0


EDIT = ("Employee identifier, as issued by the HR system.", "Employee identifier, as issued by HR.")


def _zip(repo: Path) -> bytes:
    """The repo folder as it is, but for a one-word description edit (an unchanged upload is refused)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(repo)
            if path.is_file() and "__pycache__" not in rel.parts and not rel.name.endswith((".db", ".db-journal")):
                if rel.as_posix() == "features.py":
                    text = path.read_text()
                    assert EDIT[0] in text, "the benchmark's edit no longer applies to features.py"
                    archive.writestr(f"feature_repo/{rel.as_posix()}", text.replace(*EDIT))
                else:
                    archive.write(path, f"feature_repo/{rel.as_posix()}")
    return buffer.getvalue()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3), "runs": len(ordered)}


def _prepare() -> Path:
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    repo = work / "feature_repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("__pycache__", "*.db", "data"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": "bench",
            "FEAST_REPO_PATH": str(repo),
            "PORTAL_VAR_DIR": str(work / "var"),
        }
    )
    for name in ("DATABASE_URL", "REDIS_URL", "FEAST_REGISTRY_URL", "FEAST_FS_YAML"):
        os.environ.pop(name, None)
    (work / "var").mkdir(mode=0o700)
    subprocess.run(
        [sys.executable, "-m", "feature_repo.generate", "--out", str(repo / "data")],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    for command in (["migrate", "--noinput", "-v0"], ["bootstrap_demo"]):
        subprocess.run(
            [sys.executable, "-W", "ignore", str(ROOT / "manage.py"), *command],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    return repo


def run(runs: int, fresh_runs: int) -> dict[str, Any]:
    repo = _prepare()
    import django

    django.setup()
    from django.contrib.auth.models import User

    from catalog.feast_gateway import isolation, sandbox
    from catalog.services.change_requests import change_request_create

    data = _zip(repo)
    proposer = User.objects.get(username="proposer")

    def upload(title: str) -> tuple[float, Any]:
        started = time.perf_counter()
        cr = change_request_create(
            actor=proposer, project=PROJECT, title=title, upload=(data, "feature_repo.zip"), mode="full"
        )
        return time.perf_counter() - started, cr

    first_s, first = upload("bench: first upload")
    plans = []
    for index in range(runs):
        seconds, cr = upload(f"bench: upload {index}")
        plans.append(seconds)
    changes = [f"{o['kind']} {o['name']}: {o['severity']}" for o in cr.plan["objects"]]

    limits = sandbox.UploadLimits.from_settings()

    def parse(mode: str) -> float:
        work = Path(tempfile.mkdtemp(prefix="bench-parse-"))
        try:
            copy = work / "repo"
            shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
            sandbox._readable_by_sandbox(copy)
            args = [isolation.JAIL_REPO, f"{isolation.JAIL_OUT}/result.jsonl", PROJECT, isolation.JAIL_POLICY]
            argv = (
                [isolation.JAIL_WORKER, *args]
                if mode == "call"
                else [sys.executable, "-I", isolation.JAIL_WORKER, *args]
            )
            started = time.perf_counter()
            result = sandbox._run_jailed(
                work, argv, [(str(copy), isolation.JAIL_REPO)], isolation.JAIL_REPO, limits, mode=mode
            )
            seconds = time.perf_counter() - started
            assert result.records, "the parse returned no objects"
            return seconds
        finally:
            shutil.rmtree(work, ignore_errors=True)

    template = [parse("call") for _ in range(runs)]
    fresh = [parse("exec") for _ in range(fresh_runs)]
    assert isolation._template is not None
    status = Path(f"/proc/{isolation._template.proc.pid}/status").read_text()
    rss_kib = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    return {
        "repo": "feature_repo (demo), zipped as it is",
        "archive_bytes": len(data),
        "objects": len(first.proposal.get("uploaded", [])),
        "plan_changes": changes,
        "upload_to_plan_s": _percentiles(plans),
        "first_upload_s": round(first_s, 3),
        "parse_template_s": _percentiles(template),
        "parse_fresh_s": _percentiles(fresh),
        "template_rss_mib": round(rss_kib / 1024, 1),
        "target": {"upload_to_plan_p50_s": TARGET_P50_S},
        "cpus": os.cpu_count(),
    }


def markdown(result: dict[str, Any]) -> str:
    plan, template, fresh = result["upload_to_plan_s"], result["parse_template_s"], result["parse_fresh_s"]
    return "\n".join(
        [
            "# Upload benchmark: the demo repo, from upload to plan",
            "",
            (
                f"Archive: {result['repo']} ({result['archive_bytes']:,} bytes, {result['objects']} objects), one "
                f"description edited: the plan is {'; '.join(result['plan_changes'])}. Machine: {result['cpus']} CPUs."
            ),
            "",
            "| step | p50 | p95 | runs | target |",
            "|---|---|---|---|---|",
            (
                f"| upload → plan (`change_request_create`) | {plan['p50']} s | {plan['p95']} s | {plan['runs']} | "
                f"p50 ≤ {result['target']['upload_to_plan_p50_s']} s |"
            ),
            (
                f"| parse, jailed child of the template process | {template['p50']} s | {template['p95']} s | "
                f"{template['runs']} | |"
            ),
            f"| parse, same jail, fresh interpreter (before) | {fresh['p50']} s | {fresh['p95']} s | {fresh['runs']} | |",
            "",
            (
                f"First upload in a process (starts the template, which imports Feast): {result['first_upload_s']} s. "
                f"Template process: {result['template_rss_mib']} MiB resident, one per portal process that parses uploads."
            ),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--fresh-runs", type=int, default=5)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    print(json.dumps(run(args.runs, args.fresh_runs)))


if __name__ == "__main__":
    main()
