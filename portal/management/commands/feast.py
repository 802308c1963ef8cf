"""manage.py feast ARGS...: run the real Feast CLI on the governed repo(s) with this profile's configuration.

Examples:  manage.py feast apply          manage.py feast materialize-incremental 2026-01-01T00:00:00
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog import feast_gateway


class Command(BaseCommand):
    help = "Run the Feast CLI on each governed repo (FEAST_REPO_PATH) with the profile's feature_store YAML."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--repo", help="only this repo directory (default: every governed repo)")
        parser.add_argument("feast_args", nargs="+", help="arguments for the feast CLI")

    def handle(self, *args: Any, **options: Any) -> None:
        repos = feast_gateway.governed_repos()
        if options["repo"]:
            repos = [feast_gateway.repo_ref(options["repo"])]
        failed = False
        for repo in repos:
            self.stdout.write(f"$ feast -c {repo.path} -f {repo.yaml_path.name} {' '.join(options['feast_args'])}")
            result = feast_gateway.run_cli(repo, options["feast_args"])
            self.stdout.write(result.stdout)
            if result.returncode != 0:
                sys.stderr.write(result.stderr[-4000:])
                failed = True
        if failed:
            raise CommandError("feast exited with an error")
