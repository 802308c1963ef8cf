# Search at catalog scale (catalog/search/): the index's vocabulary, and on PostgreSQL one GIN index that
# answers text, tier, filter and sample questions, plus a name btree for name-ordered ranking.

import re

from django.db import migrations, models

# catalog_search_terms(): the entry's weighted tsvector plus marker terms no typed word can reach (typed
# words are [0-9a-z]+ and markers start with "#"):
#   #n:<word>   the word is in the name (weight A)           -> "all words in the name" tier
#   #r:<word>   the word is in the name or related names, tags, owners (A, B) -> "related" tier
#   #f:<facet>:<value>  a facet value, incl. kind/project/status -> filters run inside the index
#   #s:<j>      the entry is in the deterministic 1-in-2^j sample (j = 1..8, by a hash of its id; nested)
#   #4:<word>, #8:<word>  the entry's words again, if it is in the 1-in-16 (1-in-256) sample -> estimated
#               counts read only the sampled matches, even for a prefix of a common word
# The GIN index is on the expression (not a stored column): typed words and markers are exact or prefix
# terms, so the index never asks for a recheck and the function is only evaluated when rows are written.
# PARALLEL UNSAFE keeps queries that use it out of parallel plans, whose rows come back in no fixed order
# (search lists large tiers in index order); the high COST keeps the planner from evaluating it per row
# in a scan when the index can answer.
POSTGRES_FORWARD = [
    """CREATE FUNCTION catalog_search_terms(
        p_vector tsvector, p_facets jsonb, p_kind text, p_project text, p_status text, p_id bigint
    ) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL UNSAFE COST 10000 AS $$
        SELECT p_vector || array_to_tsvector(
            ARRAY(SELECT '#n:' || l FROM unnest(tsvector_to_array(ts_filter(p_vector, '{a}'))) AS l)
            || ARRAY(SELECT '#r:' || l FROM unnest(tsvector_to_array(ts_filter(p_vector, '{a,b}'))) AS l)
            || ARRAY(SELECT '#f:' || f FROM jsonb_array_elements_text(p_facets) AS f)
            || ARRAY['#f:kind:' || p_kind, '#f:project:' || p_project, '#f:status:' || p_status]
            || ARRAY(SELECT '#s:' || j FROM generate_series(1, 8) AS j WHERE (hashint8(p_id) & 255) < (256 >> j))
            || ARRAY(SELECT '#' || j || ':' || l FROM (VALUES (4), (8)) AS s(j),
                     unnest(tsvector_to_array(p_vector)) AS l WHERE (hashint8(p_id) & 255) < (256 >> j))
        )
    $$""",
    """CREATE INDEX catalog_searchentry_terms ON catalog_searchentry USING gin (
        catalog_search_terms(vector, facet_values, kind, project, status, id))""",
    'CREATE INDEX catalog_searchentry_name_c ON catalog_searchentry ((lower(name) COLLATE "C"), id)',
    # Superseded: the terms index answers every text query; typos go through the vocabulary.
    "DROP INDEX IF EXISTS catalog_searchentry_vector",
    "DROP INDEX IF EXISTS catalog_searchentry_name_trgm",
    "CREATE INDEX catalog_searchterm_trgm ON catalog_searchterm USING gin (value gin_trgm_ops)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS catalog_searchterm_trgm",
    "CREATE INDEX IF NOT EXISTS catalog_searchentry_name_trgm ON catalog_searchentry"
    " USING gin (lower(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS catalog_searchentry_vector ON catalog_searchentry USING gin (vector)",
    "DROP INDEX IF EXISTS catalog_searchentry_name_c",
    "DROP INDEX IF EXISTS catalog_searchentry_terms",
    "DROP FUNCTION IF EXISTS catalog_search_terms(tsvector, jsonb, text, text, text, bigint)",
]
WORD = re.compile(r"[0-9a-z]+")


def _structures(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


def fill_vocabulary(apps, schema_editor):  # type: ignore[no-untyped-def]
    """The vocabulary of an index built before this migration (catalog.search.indexing keeps it after)."""
    entry = apps.get_model("catalog", "SearchEntry")
    term = apps.get_model("catalog", "SearchTerm")
    words: set[str] = set()
    owners: set[str] = set()
    for name, owner, team in entry.objects.values_list("name", "owner", "team").iterator(chunk_size=5000):
        words.update(w for w in WORD.findall(name.lower()) if len(w) >= 3 and not w.isdigit())
        owners.update(o for o in (owner, team) if o)
    rows = [term(kind="word", value=w[:255]) for w in sorted(words)]
    rows += [term(kind="owner", value=o[:255]) for o in sorted(owners)]
    term.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0006_search_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchTerm",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("word", "Word"), ("owner", "Owner")], max_length=8)),
                ("value", models.CharField(max_length=255)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "value"), name="catalog_searchterm_kind_value")
                ],
            },
        ),
        migrations.RunPython(
            _structures({"postgresql": POSTGRES_FORWARD}), _structures({"postgresql": POSTGRES_BACKWARD})
        ),
        migrations.RunPython(fill_vocabulary, migrations.RunPython.noop),
    ]
