"""manage.py preflight [--create-databases]: check configuration; one line per problem, exit 2 on any.

Warnings (uploads disabled because this machine cannot isolate uploaded code; a Feast registry whose permissions
let anyone but the portal's FEAST_APPLY_ROLE create, update or delete objects) are printed but do not fail it."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from portal.preflight import check_configuration, registry_write_warnings, secret_file_warnings, upload_isolation


class Command(BaseCommand):
    help = "Check the database, Redis and Feast configuration before starting (no tracebacks)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--create-databases", action="store_true", help="create missing PostgreSQL databases")

    def handle(self, *args: Any, **options: Any) -> None:
        problems = check_configuration(create_databases=options["create_databases"])
        for problem in problems:
            self.stderr.write(f"configuration error: {problem}")
        if problems:
            sys.exit(2)
        self.stdout.write(f"configuration ok (profile: {settings.PORTAL_PROFILE})")
        for warning in [*secret_file_warnings(), *registry_write_warnings()]:
            self.stderr.write(f"warning: {warning}")
        isolated, detail = upload_isolation()
        if isolated:
            self.stdout.write(f"uploads: isolated ({detail})")
        else:
            self.stderr.write(f"warning: {detail}")
