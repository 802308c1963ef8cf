"""Print the breaking-change rules table (catalog/services/rules.py) as the README's Markdown.

python manage.py breaking_rules            # print it
python manage.py breaking_rules --write    # replace the table between the README's markers
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from catalog.services.rules import rules_markdown

START, END = "<!-- rules-table:start (python manage.py breaking_rules --write) -->", "<!-- rules-table:end -->"


def readme_with_rules(text: str) -> str:
    """The README text with the generated table between its markers."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{rules_markdown()}{END}{tail}"


class Command(BaseCommand):
    help = "Print (or --write into README.md) the breaking-change rules table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--write", action="store_true", help="rewrite the table in README.md")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["write"]:
            self.stdout.write(rules_markdown(), ending="")
            return
        readme = Path(settings.BASE_DIR) / "README.md"
        readme.write_text(readme_with_rules(readme.read_text()))
        self.stdout.write(f"wrote the rules table into {readme}")
