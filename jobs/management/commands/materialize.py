"""manage.py materialize [--project P] [--view V ...] [--start S --end E] [--enqueue]: the portal's materialization.

Unlike `feast materialize`, it applies each view's `materialize_filter` tag, works view by view in
time chunks with batched online writes, takes the per-view lock and records the ledger.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.exceptions import PortalError
from jobs import services
from jobs.models import JobRun
from jobs.services.materialization import materialization_params, materialization_run, materialization_start


class Command(BaseCommand):
    help = "Materialize feature views into the online store (incremental, or a range with --start/--end)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="only this Feast project")
        parser.add_argument(
            "--view", action="append", dest="views", help="only this view (repeatable; needs --project)"
        )
        parser.add_argument(
            "--start", help="ISO date-time: materialize the range [start, end) instead of incrementally"
        )
        parser.add_argument("--end", help="ISO date-time (default: now)")
        parser.add_argument("--chunk-hours", type=int, help="time chunk size (default PORTAL_MATERIALIZE_CHUNK_HOURS)")
        parser.add_argument(
            "--enqueue", action="store_true", help="queue the job for a worker instead of running it in this process"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kwargs = {
            "project": options["project"],
            "views": options["views"],
            "mode": "range" if options["start"] else "incremental",
            "start": options["start"],
            "end": options["end"],
            "chunk_hours": options["chunk_hours"],
        }
        try:
            if options["enqueue"]:
                run = materialization_start(actor=None, trigger="command", **kwargs)
                self.stdout.write(f"materialization queued: job #{run.pk}")
                return
            params = materialization_params(**kwargs)
            finished = services.job_run_execute(
                job_run_id=None,
                kind=JobRun.Kind.MATERIALIZE,
                params=params,
                celery_task_id="",
                body=materialization_run,
                trigger="command",
            )
        except PortalError as exc:
            raise CommandError(str(exc)) from None
        if finished is None:
            raise CommandError("the job was not run")
        for view in finished.result.get("views", []):
            self.stdout.write(
                f"{view['project']}/{view['view']}: {view['status']} — {view['rows_written']} rows written"
                f" ({view['rows_filtered']} filtered) in {view['duration_seconds']} s"
                + (f"\n  error: {view['error']}" if view["error"] else "")
            )
        if not finished.result.get("views"):
            self.stdout.write("nothing to materialize: every view is up to date")
        if finished.status != JobRun.Status.SUCCEEDED:
            raise CommandError(f"materialization failed (job #{finished.pk}): {finished.error}")
        self.stdout.write(f"job #{finished.pk} succeeded")
