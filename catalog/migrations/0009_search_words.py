# Names are indexed by the same words a search splits them into (catalog.search.backends.WORD: runs of
# letters and digits). Before, only `_` separated words, so PostgreSQL's parser kept `data/x.parquet` (an
# unnamed FileSource, named after its path) or `team.view-v2` as one token, and `parquet` found nothing.
# The generated column is rebuilt with the new expression; the terms index that reads it is rebuilt too.

from typing import Any

from django.db import migrations

SPLIT = "regexp_replace({0}, '[^0-9A-Za-z]+', ' ', 'g')"
VECTOR = f"""setweight(to_tsvector('simple', name || ' ' || {SPLIT.format("name")}), 'A') ||
        setweight(to_tsvector('simple', {SPLIT.format("parent || ' ' || related || ' ' || owner || ' ' || team")}), 'B') ||
        setweight(to_tsvector('simple', description), 'C')"""
OLD_VECTOR = """setweight(to_tsvector('simple', name || ' ' || replace(name, '_', ' ')), 'A') ||
        setweight(to_tsvector('simple', replace(parent || ' ' || related || ' ' || owner || ' ' || team, '_', ' ')), 'B') ||
        setweight(to_tsvector('simple', description), 'C')"""
TERMS_INDEX = """CREATE INDEX catalog_searchentry_terms ON catalog_searchentry USING gin (
        catalog_search_terms(vector, facet_values, kind, project, status, id))"""


def _vector(expression: str) -> list[str]:
    return [
        "DROP INDEX IF EXISTS catalog_searchentry_terms",
        "ALTER TABLE catalog_searchentry DROP COLUMN vector",
        f"ALTER TABLE catalog_searchentry ADD COLUMN vector tsvector GENERATED ALWAYS AS ({expression}) STORED",
        TERMS_INDEX,
    ]


def _run(statements: list[str]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":  # SQLite's FTS5 trigram table matches substrings
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0008_governance"),
    ]

    operations = [migrations.RunPython(_run(_vector(VECTOR)), _run(_vector(OLD_VECTOR)))]
