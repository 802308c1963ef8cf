"""Database-specific matching and ranking, behind one small interface (as Wagtail's search backends).

A backend turns the user's words into SQL that yields `(id, score)` for matching entries. Everything
else (filters, facets, paging, highlighting) is shared and lives in catalog/search/__init__.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection

WORD = re.compile(r"[0-9A-Za-z]+")


def words(q: str) -> list[str]:
    """The query's words, lower-cased; underscores and punctuation split words like Feast names do."""
    return [w.lower() for w in WORD.findall(q)][:8]


def _tsquery(q: str) -> str:
    """Words typed apart must all match (&); parts of one token (`view_01234`, `salary-band`) must also be
    adjacent (<->), as they are in the indexed name. Every word matches as a prefix."""
    chunks = []
    for chunk in q.split()[:8]:
        parts = [w.lower() for w in WORD.findall(chunk)][:8]
        if parts:
            chunks.append(" <-> ".join(f"{w}:*" for w in parts))
    return " & ".join(f"({c})" for c in chunks)


@dataclass(frozen=True)
class Match:
    """SQL yielding (id, score) for entries that match, and its parameters."""

    sql: str
    params: list[Any]


class PostgresBackend:
    """Weighted tsvector (name A, related names B, prose C) with prefix matching, plus pg_trgm for typos.

    Matching is done by the GIN indexes alone (full text, or full text UNION trigram when `fuzzy`); the
    score is computed only for the candidates they return.
    """

    supports_fuzzy = True
    # Facet counts unnest each match's own facet_values (no join back to the facet table).
    facet_values = "CROSS JOIN LATERAL jsonb_array_elements_text(m.facet_values) AS f(value)"
    facet_filter = "s.facet_values @> jsonb_build_array(%s::text)"

    def match(self, q: str, *, fuzzy: bool = False) -> Match | None:
        terms = words(q)
        if not terms:
            return None
        tsquery = _tsquery(q)
        needle = " ".join(terms)
        raw = q.strip().lower()
        prefix = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = "e.vector @@ to_tsquery('simple', %s)"
        params: list[Any] = [tsquery]
        if fuzzy:
            # Typos ("satisfacton"): also names holding a word similar to the query (trigram index).
            where = (
                "e.id IN (SELECT id FROM catalog_searchentry WHERE vector @@ to_tsquery('simple', %s)"
                " UNION SELECT id FROM catalog_searchentry WHERE %s <%% lower(name))"
            )
            params.append(needle)
        # An exact name match comes first, then names starting with the query, then full-text rank
        # (name > related names > prose) plus name similarity; removed objects sink.
        # Tiers, cheapest first: the exact name, a name starting with the query, a name containing its
        # first word, then any other hit (related names, tags, owners, prose). Ties go by name. Name
        # similarity (the trigram pass) lifts typo matches; it is only worth its cost on that pass.
        similarity = "word_similarity(%s, lower(e.name)) * 2" if fuzzy else "0 * length(%s)"
        contains = "%" + terms[0] + "%"
        sql = f"""
            SELECT e.id, e.project, e.kind, e.status, e.name, e.facet_values,
                   CASE WHEN lower(e.name) = %s THEN 10 WHEN lower(e.name) LIKE %s THEN 4
                        WHEN lower(e.name) LIKE %s THEN 2 ELSE 1 END
                   + {similarity}
                   - CASE WHEN e.status = 'removed' THEN 5 ELSE 0 END AS score
            FROM catalog_searchentry e
            WHERE {where}
        """
        return Match(sql, [raw, prefix, contains, needle, *params])

    def suggest(self, q: str, *, fuzzy: bool = False) -> Match | None:
        terms = words(q)
        if not terms:
            return None
        raw = q.strip().lower()
        prefix = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = "lower(e.name) LIKE %s"  # served by the trigram index
        params: list[Any] = [prefix]
        if fuzzy:
            where += " OR %s <%% lower(e.name)"
            params.append(raw)
        sql = f"""
            SELECT e.id,
                   CASE WHEN lower(e.name) LIKE %s THEN 2 ELSE 0 END + word_similarity(%s, lower(e.name)) AS score
            FROM catalog_searchentry e
            WHERE {where}
        """
        return Match(sql, [prefix, raw, *params])


class SqliteBackend:
    """FTS5 with the trigram tokenizer (substrings of 3+ characters), ranked by bm25; typos fall back to names."""

    @staticmethod
    def _fts_query(terms: list[str]) -> str:
        return " AND ".join(f'"{t}"' for t in terms if len(t) >= 3)

    supports_fuzzy = False
    facet_values = "JOIN json_each(m.facet_values) AS f"
    facet_filter = "EXISTS (SELECT 1 FROM json_each(s.facet_values) WHERE value = %s)"

    def match(self, q: str, *, fuzzy: bool = False) -> Match | None:
        terms = words(q)
        fts = self._fts_query(terms)
        raw = q.strip().lower()
        if not fts:
            if not raw:
                return None
            sql = (
                "SELECT e.id, e.project, e.kind, e.status, e.name, e.facet_values, 1.0 AS score"
                " FROM catalog_searchentry e WHERE lower(e.name) LIKE %s"
            )
            return Match(sql, [raw + "%"])
        sql = """
            SELECT e.id, e.project, e.kind, e.status, e.name, e.facet_values,
                   -bm25(catalog_searchentry_fts, 10.0, 3.0, 1.0)
                   + CASE WHEN lower(e.name) = %s THEN 10 WHEN lower(e.name) LIKE %s THEN 3 ELSE 0 END
                   - CASE WHEN e.status = 'removed' THEN 1 ELSE 0 END AS score
            FROM catalog_searchentry_fts JOIN catalog_searchentry e ON e.id = catalog_searchentry_fts.rowid
            WHERE catalog_searchentry_fts MATCH %s
        """
        return Match(sql, [raw, raw + "%", fts])

    def suggest(self, q: str, *, fuzzy: bool = False) -> Match | None:
        raw = q.strip().lower()
        if not raw:
            return None
        sql = "SELECT e.id, 1.0 AS score FROM catalog_searchentry e WHERE lower(e.name) LIKE %s"
        return Match(sql, [f"%{raw}%"])


def backend() -> PostgresBackend | SqliteBackend:
    """The backend for the portal's database."""
    return PostgresBackend() if connection.vendor == "postgresql" else SqliteBackend()
