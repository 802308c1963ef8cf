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


@dataclass(frozen=True)
class Match:
    """SQL yielding (id, score) for entries that match, and its parameters."""

    sql: str
    params: list[Any]


class PostgresBackend:
    """Weighted tsvector (name A, related names B, prose C) with prefix matching, plus pg_trgm for typos."""

    def match(self, q: str) -> Match | None:
        terms = words(q)
        if not terms:
            return None
        tsquery = " & ".join(f"{t}:*" for t in terms)
        needle = " ".join(terms)
        raw = q.strip().lower()
        # Full-text hits rank by ts_rank_cd; trigram hits (typos: "tenrue") by word similarity to the name.
        # An exact name match always comes first, then names that start with the query.
        sql = """
            SELECT e.id,
                   ts_rank_cd(e.vector, to_tsquery('simple', %s)) * 4
                   + word_similarity(%s, lower(e.name)) * 2
                   + CASE WHEN lower(e.name) = %s THEN 10 WHEN lower(e.name) LIKE %s THEN 3 ELSE 0 END
                   - CASE WHEN e.status = 'removed' THEN 1 ELSE 0 END AS score
            FROM catalog_searchentry e
            WHERE e.vector @@ to_tsquery('simple', %s) OR %s <%% lower(e.name)
        """
        prefix = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return Match(sql, [tsquery, needle, raw, prefix, tsquery, needle])

    def suggest(self, q: str, limit: int) -> Match | None:
        terms = words(q)
        if not terms:
            return None
        raw = q.strip().lower()
        prefix = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql = """
            SELECT e.id,
                   CASE WHEN lower(e.name) LIKE %s THEN 2 ELSE 0 END + word_similarity(%s, lower(e.name)) AS score
            FROM catalog_searchentry e
            WHERE lower(e.name) LIKE %s OR %s <%% lower(e.name)
        """
        return Match(sql, [prefix, raw, prefix, raw])


class SqliteBackend:
    """FTS5 with the trigram tokenizer (substrings of 3+ characters), ranked by bm25; typos fall back to names."""

    @staticmethod
    def _fts_query(terms: list[str]) -> str:
        return " AND ".join(f'"{t}"' for t in terms if len(t) >= 3)

    def match(self, q: str) -> Match | None:
        terms = words(q)
        fts = self._fts_query(terms)
        raw = q.strip().lower()
        if not fts:
            if not raw:
                return None
            sql = "SELECT e.id, 1.0 AS score FROM catalog_searchentry e WHERE lower(e.name) LIKE %s"
            return Match(sql, [raw + "%"])
        sql = """
            SELECT e.id,
                   -bm25(catalog_searchentry_fts, 10.0, 3.0, 1.0)
                   + CASE WHEN lower(e.name) = %s THEN 10 WHEN lower(e.name) LIKE %s THEN 3 ELSE 0 END
                   - CASE WHEN e.status = 'removed' THEN 1 ELSE 0 END AS score
            FROM catalog_searchentry_fts JOIN catalog_searchentry e ON e.id = catalog_searchentry_fts.rowid
            WHERE catalog_searchentry_fts MATCH %s
        """
        return Match(sql, [raw, raw + "%", fts])

    def suggest(self, q: str, limit: int) -> Match | None:
        raw = q.strip().lower()
        if not raw:
            return None
        sql = "SELECT e.id, 1.0 AS score FROM catalog_searchentry e WHERE lower(e.name) LIKE %s"
        return Match(sql, [f"%{raw}%"])


def backend() -> PostgresBackend | SqliteBackend:
    """The backend for the portal's database."""
    return PostgresBackend() if connection.vendor == "postgresql" else SqliteBackend()
