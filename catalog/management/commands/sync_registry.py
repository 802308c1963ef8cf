"""manage.py sync_registry [--project P] [--force]: mirror the Feast registries into the catalog now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.services.sync import registry_sync


class Command(BaseCommand):
    help = "Sync the governed Feast registries into the catalog (in this process, not through a worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="sync only this Feast project")
        parser.add_argument(
            "--force", action="store_true", help="re-read even if the registry fingerprint is unchanged"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        runs = registry_sync(project=options["project"], trigger="command", force=options["force"])
        failed = False
        for run in runs:
            line = (
                f"{run.registry_key}: {run.status} in {run.duration_ms} ms — added {run.added}, changed {run.changed},"
                f" removed {run.removed}, unchanged {run.unchanged}, out-of-band {run.out_of_band}"
            )
            if run.error:
                line += f"\n  error: {run.error}"
                failed = failed or run.status == "failed"
            for skipped in run.skipped_objects:
                line += f"\n  skipped: {skipped}"
            self.stdout.write(line)
        if failed:
            raise CommandError("sync failed")
