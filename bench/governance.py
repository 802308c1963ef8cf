"""Benchmark: plan and apply a change request that edits one view, on the 10k-view SQL registry, against the
CLI's `feast plan` and `feast apply` of the full repo, in the same run.

    python bench/governance.py --views 10000      (prints one JSON object)
    python bench/governance.py --markdown bench/results/governance.json

Steps, on one registry (PostgreSQL), in this order:
  portal_plan_s    change_request_create(): read the touched objects and their dependents from the registry,
                   build the proposed protos, field-level diff, classification, impact, approvals needed
  portal_apply_s   the apply job's body: scope fingerprint check, Feast SDK apply of the stored protos
                   (only the objects the request touches), read-back, catalog sync of the change
  cli_plan_s       `feast plan` on a repo whose definitions build the same 10k views (imports, infers, diffs)
  cli_apply_s      `feast apply` of that repo
The CLI steps have a timeout (--cli-timeout, default 1800 s each); a timed-out step is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalog_sync import build_registry, measure, prepare

DEFINITIONS = '''"""The governance benchmark's repo: the same synthetic objects bench/catalog_sync.py writes."""
import sys

sys.path.insert(0, {root!r})
from bench.catalog_sync import synthetic_objects  # noqa: E402

_entities, _views, _services = synthetic_objects({views})
for _obj in [*_entities, *_views, *_services]:
    globals()["obj_" + _obj.name] = _obj
'''


def _cli(repo: Path, args: list[str], timeout: float) -> dict[str, Any]:
    feast_bin = Path(sys.executable).with_name("feast")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["FEAST_NO_PROGRESS"] = "1"
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [str(feast_bin), "-c", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": round(time.perf_counter() - started, 2), "timed_out": True, "returncode": None}
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "timed_out": False,
        "returncode": result.returncode,
        "tail": (result.stdout + result.stderr).strip()[-300:],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, default=10000)
    parser.add_argument("--cli-timeout", type=float, default=1800)
    parser.add_argument("--skip-cli", action="store_true", help="only the portal's steps (development)")
    parser.add_argument("--markdown", type=Path, help="print the Markdown report of a results file and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    n = args.views
    repo, _, registry_url = prepare(n, "gov")
    build_registry(registry_url, n)
    (repo / "definitions.py").write_text(DEFINITIONS.format(root=str(ROOT), views=n))
    (repo / "var").mkdir(exist_ok=True)  # the quickstart broker (SQLite) the apply queues its catalog sync on

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from catalog import feast_gateway
    from catalog.services.change_requests import change_request_approve, change_request_create
    from catalog.services.sync import registry_sync
    from jobs.models import JobRun
    from jobs.services.apply import change_request_apply_run, change_request_apply_start

    feast_gateway.feast_api()
    registry_sync(trigger="bench")  # the catalog mirrors the registry (not timed)
    users = {}
    for name, role in [("author", "proposer"), ("rev1", "approver"), ("rev2", "approver"), ("ops", "operator")]:
        users[name] = User.objects.create_user(name, password="bench-password-123")
        users[name].groups.add(Group.objects.get_or_create(name=role)[0])

    view = "view_00042"
    fields = feast_gateway.object_info(
        feast_gateway.project_protos(feast_gateway.governed_repos()[0], "bench", [("feature_view", view)])[
            ("feature_view", view)
        ],
        "bench",
    ).features  # type: ignore[attr-defined]
    edit = {"op": "change_dtype", "view": view, "field": fields[0].name, "dtype": "Float64"}

    def plan() -> Any:
        return change_request_create(actor=users["author"], project="bench", title="widen", edits=[edit], submit=True)

    # The first plan in a process also imports Feast's offline store (dask: ~2.5 s, once per process); a
    # running web process has paid that, so the plan is measured after one (recorded as cold_plan_s).
    cold_plan_s, _, _ = measure(plan)
    if os.environ.get("BENCH_PROFILE"):  # where the plan's time goes (stderr)
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.runcall(plan)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    plan_s, plan_mib, cr = measure(plan)
    from catalog.models import Team

    for team in cr.required_teams:  # the reviewers sign off for every owner team
        Team.objects.get(pk=team["id"]).members.add(users["rev1"], users["rev2"])
    for reviewer in ("rev1", "rev2")[: cr.required_approvals]:
        change_request_approve(cr=cr, actor=users[reviewer])
    cr.refresh_from_db()
    run = change_request_apply_start(cr=cr, actor=users["ops"])
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.RUNNING)  # the body runs here, not on Celery
    run.refresh_from_db()
    apply_s, apply_mib, result = measure(lambda: change_request_apply_run(run))
    cr.refresh_from_db()
    # The catalog catches up in the sync job the apply queues (no worker here: run the same sync inline).
    sync_s, _, _ = measure(lambda: registry_sync(project="bench", trigger="apply"))
    linked = cr.versions.count()
    out: dict[str, Any] = {
        "views": n,
        "features": n * 20,
        "edit": edit,
        "severity": cr.severity,
        "objects_applied": result.get("applied"),
        "status": cr.status,
        "portal_plan_s": round(plan_s, 3),
        "portal_cold_plan_s": round(cold_plan_s, 3),
        "portal_plan_peak_mib": round(plan_mib, 1),
        "portal_apply_s": round(apply_s, 3),
        "portal_apply_feast_s": result.get("apply_seconds"),
        "portal_apply_peak_mib": round(apply_mib, 1),
        "catalog_sync_after_apply_s": round(sync_s, 3),
        "versions_linked_to_request": linked,
        "targets": {"plan_s": 10, "apply_s": 5},
    }
    if not args.skip_cli:
        yaml = ["-f", str(repo / "feature_store.yaml")]
        out["cli_plan"] = _cli(repo, [*yaml, "plan"], args.cli_timeout)
        out["cli_apply"] = _cli(repo, [*yaml, "apply"], args.cli_timeout)
    print(json.dumps(out))


def markdown(r: dict[str, Any]) -> str:
    def cli(step: dict[str, Any] | None) -> str:
        if not step:
            return "not run"
        if step.get("timed_out"):
            return f"> {step['seconds']} s (stopped at the timeout)"
        return f"{step['seconds']} s" + ("" if step.get("returncode") == 0 else f" (exit {step.get('returncode')})")

    lines = [
        f"# Governance benchmark: one-view change request on {r['views']:,} views ({r['features']:,} features)",
        "",
        (
            f"Edit: `{r['edit']['op']}` {r['edit']['view']}.{r['edit']['field']} → {r['edit']['dtype']} "
            f"(classified {r['severity']}; applied: {', '.join(r['objects_applied'] or [])}; final status {r['status']})"
        ),
        "",
        "| step | portal | target | Feast CLI, full repo |",
        "|---|---|---|---|",
        (
            f"| plan (Feast's apply on a scratch copy, checks against the data, diff, classification) | "
            f"{r['portal_plan_s']} s (first in a process: {r.get('portal_cold_plan_s', '?')} s) | "
            f"≤ {r['targets']['plan_s']} s | "
            f"`feast plan`: {cli(r.get('cli_plan'))} |"
        ),
        (
            f"| apply | {r['portal_apply_s']} s (lock, scope check and Feast apply: {r['portal_apply_feast_s']} s) | "
            f"≤ {r['targets']['apply_s']} s | `feast apply`: {cli(r.get('cli_apply'))} |"
        ),
        "",
        f"Peak RSS growth: plan {r['portal_plan_peak_mib']} MiB, apply {r['portal_apply_peak_mib']} MiB.",
        "",
        (
            f"After the apply job, the catalog sync it queues took {r['catalog_sync_after_apply_s']} s (a full read "
            f"of the registry) and linked {r['versions_linked_to_request']} new versions to the request (in-band)."
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
