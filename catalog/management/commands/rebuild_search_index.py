"""Rebuild the catalog search index from the catalog (the sync keeps it current; use after a restore)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from catalog.search.indexing import rebuild_index


class Command(BaseCommand):
    help = "Rebuild the search index (search entries and facets) from the catalog."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            n = rebuild_index()
        self.stdout.write(f"indexed {n} entries")
