"""Database-specific matching, counting and ranking behind one small interface (as Wagtail's search backends).

A backend answers five questions about a parsed `Query`: counts over the matches (`exact`, or over a
deterministic sample: `sample`), a page of the ranking (`ranked`), corrections for words that match
nothing, type-ahead rows and owner names. Everything else (estimates, paging, highlighting) is shared and
lives in catalog/search/__init__.py.

Ranking (PostgreSQL), tiers best first:
  PREFIX   the name starts with what was typed (the exact name sorts first: it is the shortest such name)
  NAME     every word is in the name (weight A)
  RELATED  every word is in the name or related names, tags, owners (A, B)
  TEXT     the words need the description too (C)
  REMOVED  removed objects, last
Within a tier, by name; a tier of more than SORT_LIMIT matches (as estimated) other than the name-prefix
range is listed in index order instead, so that its first page does not cost a sort of all of it. Every
word matches as a prefix, and the parts of one token (`view_01234`) must be adjacent.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connection

WORD = re.compile(r"[0-9A-Za-z]+")
MAX_WORDS = 8

PREFIX, NAME, RELATED, TEXT, REMOVED = 2, 3, 4, 5, 6
TIERS = (PREFIX, NAME, RELATED, TEXT, REMOVED)
TIER_SCORE = {PREFIX: 8.0, NAME: 6.0, RELATED: 4.0, TEXT: 2.0, REMOVED: 0.0}
EXACT_NAME_SCORE = 10.0
COLUMN_FACETS = ("project", "kind", "status")


def score(tier: int, exact: bool) -> float:
    """The score a hit reports: its tier, with the exact name above the other prefix matches."""
    return EXACT_NAME_SCORE if exact and tier == PREFIX else TIER_SCORE[tier]


@dataclass(frozen=True)
class Query:
    """What was typed and the filters, in the forms the backends need."""

    raw: str  # lower-cased, stripped: "starts with" and "is" compare names to it
    chunks: tuple[tuple[str, ...], ...]  # whitespace-separated tokens; the words of one must be adjacent
    filters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, q: str, filters: Mapping[str, str] | None = None) -> Query:
        chunks: list[tuple[str, ...]] = []
        budget = MAX_WORDS
        for token in q.split():
            parts = tuple(w.lower() for w in WORD.findall(token))[:budget]
            if parts:
                chunks.append(parts)
                budget -= len(parts)
            if budget <= 0:
                break
        return cls(raw=q.strip().lower(), chunks=tuple(chunks), filters=tuple(sorted((filters or {}).items())))

    @property
    def words(self) -> list[str]:
        return [w for chunk in self.chunks for w in chunk]

    @property
    def phrase(self) -> bool:
        """Parts of one token (`view_01234`, `salary-band`) must be adjacent: a positional check."""
        return any(len(c) > 1 for c in self.chunks)

    def tsquery(self, weights: str = "") -> str:
        """Every word as a prefix, parts of a token adjacent (<->); `weights` restricts where they may be."""
        return " & ".join("(" + " <-> ".join(f"{w}:*{weights}" for w in chunk) + ")" for chunk in self.chunks)

    def with_words(self, replacements: Mapping[str, str]) -> Query:
        chunks = tuple(tuple(replacements.get(w, w) for w in chunk) for chunk in self.chunks)
        raw = " ".join(" ".join(chunk) for chunk in chunks)
        return Query(raw=raw, chunks=chunks, filters=self.filters)


@dataclass
class Counts:
    """Counts over every match (`scale` 1) or over the deterministic 1-in-`scale` sample of them."""

    rows: int = 0
    scale: int = 1
    tiers: dict[int, int] = field(default_factory=dict)
    facets: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_facet(self, key: str, n: int) -> None:
        facet, _, value = key.partition(":")
        self.facets.setdefault(facet, {})[value] = self.facets.get(facet, {}).get(value, 0) + n


@dataclass
class Page:
    """A page of the ranking: (entry id, score) best first; `total` is exact when the ranking ran out."""

    rows: list[tuple[int, float]] = field(default_factory=list)
    has_next: bool = False
    total: int | None = None


class Backend(Protocol):
    def sample(self, query: Query, *, scale: int, cap: int, markers: bool = False) -> Counts: ...

    def exact(self, query: Query, *, offset: int, limit: int, cap: int) -> tuple[Counts, Page] | None: ...

    def ranked(self, query: Query, counts: Counts, *, offset: int, limit: int) -> Page: ...

    def corrections(self, words: list[str]) -> dict[str, str]: ...

    def suggest(self, query: Query, *, limit: int) -> list[tuple[int, float]]: ...

    def owners(self, text: str, *, limit: int) -> list[str]: ...


def _like_prefix(raw: str) -> str:
    return raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _lexeme(text: str) -> str:
    """A tsquery term for an exact lexeme (no text-search parsing): quoted, quotes and backslashes escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


# The expression of the terms GIN index (migration 0007): text terms plus #n:/#r: tier markers, #f: facet
# values, #s: sample buckets and #4:/#8: sampled words. Queries must spell it exactly like this to use the index.
TERMS = "catalog_search_terms(e.vector, e.facet_values, e.kind, e.project, e.status, e.id)"
# Samples whose words the index holds again (migration 0007): 1 in 2^4 and 1 in 2^8 entries.
SAMPLE_WORDS = (4, 8)
# A tier estimated to hold at most this many matches is read whole and sorted by name; a larger one is
# listed in index order (as the terms index hands its rows over), so a page reads about a page of rows.
SORT_LIMIT = 1000
# How long term frequencies (the planner's statistics of the terms index) are reused.
STATS_TTL = 300.0
_stats: dict[str, Any] = {"at": -STATS_TTL, "freqs": {}, "floor": 0.0}


def _term_frequencies() -> tuple[dict[str, float], float]:
    """The share of entries holding each common term (from ANALYZE), and the share below which none is listed."""
    now = time.monotonic()
    if now - _stats["at"] > STATS_TTL:
        freqs: dict[str, float] = {}
        floor = 0.0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats"
                " WHERE schemaname = current_schema() AND tablename = 'catalog_searchentry_terms'"
            )
            row = cursor.fetchone()
        if row and row[0]:
            elems, values = row
            freqs = {e: float(f) for e, f in zip(elems, values, strict=False) if not e.startswith("#")}
            floor = float(values[len(elems)]) if len(values) > len(elems) else 0.0
        _stats.update(at=now, freqs=freqs, floor=floor)
    return _stats["freqs"], _stats["floor"]


class PostgresBackend:
    """Weighted tsvector + one GIN index over terms, tier markers, facet values and sampled words.

    Work is bounded by what is shown, not by how much matches: counts over a large match set come from a
    deterministic sample (`#4:`/`#8:` terms: the index hands over only the sampled matches), and a page
    of the ranking reads, tier by tier, about a page of rows (the name btree for names that start with
    the query; the terms index in its own order for large tiers) or, for small tiers, the tier sorted by
    name.
    The index is asked for the query's rarest word only (expanding a prefix of a common word is costly);
    the other words, and the order of a token's parts, are checked on the rows it returns.
    """

    def _index_word(self, query: Query) -> str:
        """The word to look up in the index: the rarest, by the statistics (every word matches as a prefix)."""
        freqs, floor = _term_frequencies()
        if not freqs:
            return query.words[-1]

        def share(word: str) -> float:
            return min(1.0, sum(f for term, f in freqs.items() if term.startswith(word))) or floor

        return min(query.words, key=lambda w: (share(w), -len(w)))

    def _gin(self, query: Query, marker: str = "", extra: tuple[str, ...] = ()) -> str:
        word = self._index_word(query)
        terms = [f"{_lexeme(marker + word)}:*" if marker else f"{word}:*"]
        terms += [_lexeme(f"#f:{name}:{value}") for name, value in query.filters]
        terms += [_lexeme(x) for x in extra]
        return " & ".join(terms)

    def _rest(self, query: Query) -> tuple[str, list[Any]]:
        """What the index lookup leaves to check on the rows: the other words, a token's parts in order."""
        if len(query.words) == 1:
            return "", []
        return " AND e.vector @@ to_tsquery('simple', %s)", [query.tsquery()]

    def _tier_case(self, query: Query) -> tuple[str, list[Any]]:
        sql = (
            "CASE WHEN e.status = 'removed' THEN 6 WHEN left(lower(e.name), %s) = %s THEN 2"
            " WHEN e.vector @@ to_tsquery('simple', %s) THEN 3 WHEN e.vector @@ to_tsquery('simple', %s) THEN 4"
            " ELSE 5 END"
        )
        return sql, [len(query.raw), query.raw, query.tsquery("A"), query.tsquery("AB")]

    def _counts_sql(self, query: Query, *, marker: str, cap: int, extra: tuple[str, ...] = ()) -> tuple[str, list[Any]]:
        tier, tier_params = self._tier_case(query)
        rest, rest_params = self._rest(query)
        sql = (
            "WITH m AS MATERIALIZED ("
            ' SELECT e.id, e.kind, e.project, e.status, e.facet_values, lower(e.name) COLLATE "C" AS lname,'
            f" {tier} AS tier, lower(e.name) = %s AS exact"
            f" FROM catalog_searchentry e WHERE {TERMS} @@ %s::tsquery{rest} LIMIT %s)"
            " SELECT 't', CAST(m.tier AS text), count(*), 0 FROM m GROUP BY m.tier"
            " UNION ALL SELECT 'f', 'kind:' || m.kind, count(*), 0 FROM m GROUP BY m.kind"
            " UNION ALL SELECT 'f', 'project:' || m.project, count(*), 0 FROM m GROUP BY m.project"
            " UNION ALL SELECT 'f', 'status:' || m.status, count(*), 0 FROM m GROUP BY m.status"
            " UNION ALL SELECT 'f', f.value, count(*), 0"
            " FROM m CROSS JOIN LATERAL jsonb_array_elements_text(m.facet_values) AS f(value) GROUP BY f.value"
        )
        params = [*tier_params, query.raw, self._gin(query, marker, extra), *rest_params, cap]
        return sql, params

    @staticmethod
    def _read_counts(rows: list[tuple[str, str, int, int]], scale: int) -> Counts:
        counts = Counts(scale=scale)
        for row_type, key, n, _ in rows:
            if row_type == "t":
                counts.tiers[int(key)] = int(n)
                counts.rows += int(n)
            elif row_type == "f":
                counts.add_facet(key, int(n))
        return counts

    def sample(self, query: Query, *, scale: int, cap: int, markers: bool = False) -> Counts:
        """Counts over the sampled matches (`scale` a power of two, 2 to 256).

        The index holds the words of the entries in the 1-in-16 and 1-in-256 samples again (`#4:word`,
        `#8:word`), so it hands over only the sampled matches; other rates, or `markers`, intersect the
        word with `#s:` markers instead (slower for a common word, but the same sample).
        """
        level = scale.bit_length() - 1
        if level in SAMPLE_WORDS and not markers:
            sql, params = self._counts_sql(query, marker=f"#{level}:", cap=cap)
        else:
            sql, params = self._counts_sql(query, marker="", extra=(f"#s:{level}",), cap=cap)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return self._read_counts(cursor.fetchall(), scale)

    def exact(self, query: Query, *, offset: int, limit: int, cap: int) -> tuple[Counts, Page] | None:
        sql, params = self._counts_sql(query, marker="", cap=cap + 1)
        sql += (
            " UNION ALL SELECT * FROM (SELECT 'h', CAST(m.id AS text), m.tier, CAST(m.exact AS int) FROM m"
            " ORDER BY m.tier, m.lname, m.id LIMIT %s OFFSET %s) page"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, limit + 1, offset])
            rows = cursor.fetchall()
        counts = self._read_counts([r for r in rows if r[0] != "h"], 1)
        if counts.rows > cap:
            return None
        hits = [(int(key), score(int(tier), bool(exact))) for kind, key, tier, exact in rows if kind == "h"]
        return counts, Page(rows=hits[:limit], has_next=len(hits) > limit, total=counts.rows)

    # --- the ranking, tier by tier --------------------------------------------------------------------

    def _tier_conditions(self, query: Query, tier: int) -> tuple[str, list[Any]]:
        """Membership of a tier, as checks on a row already read (cheap columns and the stored vector)."""
        starts = "left(lower(e.name), %s) = %s"
        sp = [len(query.raw), query.raw]
        a, ab = "e.vector @@ to_tsquery('simple', %s)", "e.vector @@ to_tsquery('simple', %s)"
        qa, qab = query.tsquery("A"), query.tsquery("AB")
        active = "e.status <> 'removed'"
        if tier == PREFIX:
            return f"{active} AND {starts}", sp
        if tier == NAME:
            return f"{active} AND NOT {starts} AND {a}", [*sp, qa]
        if tier == RELATED:
            return f"{active} AND NOT {starts} AND NOT {a} AND {ab}", [*sp, qa, qab]
        if tier == TEXT:
            return f"{active} AND NOT {starts} AND NOT {ab}", [*sp, qab]
        return "e.status = 'removed'", []

    def _tier_by_index(self, query: Query, tier: int, limit: int, *, by_name: bool) -> list[tuple[int, bool]]:
        """A tier's matches through the terms index (its markers narrow it there).

        `by_name`: read the whole tier and sort it by name; otherwise stop after `limit` rows, in the order
        the index hands them over (the table's: stable while the catalog does not change).
        """
        marker = "#n:" if tier in (PREFIX, NAME) else "#r:" if tier == RELATED else ""
        extra = ("#f:status:removed",) if tier == REMOVED else ()
        cond, cond_params = self._tier_conditions(query, tier)
        rest, rest_params = self._rest(query)
        # `|| ''`: sort, rather than walk the name btree (the tier is small: read it through the index).
        order = "ORDER BY lower(e.name) COLLATE \"C\" || '', e.id" if by_name else ""
        sql = (
            f"SELECT e.id, lower(e.name) = %s FROM catalog_searchentry e WHERE {TERMS} @@ %s::tsquery"
            f" AND {cond}{rest} {order} LIMIT %s"
        )
        params = [query.raw, self._gin(query, marker, extra), *cond_params, *rest_params, limit]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [(int(i), bool(x)) for i, x in cursor.fetchall()]

    def _prefix_by_name(self, query: Query, limit: int) -> list[tuple[int, bool]] | None:
        """Names that start with the query, in name order: a range of the name btree, read until `limit`.

        Without filters nearly every name in the range is a match; None if too many were not (removed).
        """
        budget = 2 * limit + 100
        sql = (
            "SELECT e.id, lower(e.name) = %s, e.status <> 'removed' AND e.vector @@ to_tsquery('simple', %s)"
            ' FROM catalog_searchentry e WHERE lower(e.name) COLLATE "C" LIKE %s'
            ' ORDER BY lower(e.name) COLLATE "C", e.id LIMIT %s'
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [query.raw, query.tsquery(), _like_prefix(query.raw), budget])
            scanned = cursor.fetchall()
        found = [(int(i), bool(x)) for i, x, ok in scanned if ok]
        if len(found) >= limit or len(scanned) < budget:
            return found[:limit]
        return None

    def ranked(self, query: Query, counts: Counts, *, offset: int, limit: int) -> Page:
        page = Page()
        skip, want, seen = offset, limit + 1, 0
        for tier in TIERS:
            need = skip + want
            # A tier's order depends on its estimated size only, never on the page asked for: by name when
            # small (or when it is the name-prefix range), else the index's order.
            by_name = counts.tiers.get(tier, 0) * counts.scale <= SORT_LIMIT or (tier == PREFIX and not query.filters)
            rows = None
            if by_name and tier == PREFIX and not query.filters:
                rows = self._prefix_by_name(query, need)
            if rows is None:
                rows = self._tier_by_index(query, tier, need, by_name=by_name)
            seen += len(rows)
            if len(rows) <= skip:
                skip -= len(rows)
                continue
            taken = rows[skip : skip + want]
            page.rows += [(i, score(tier, exact)) for i, exact in taken]
            want -= len(taken)
            skip = 0
            if want == 0:
                page.has_next = True
                page.rows = page.rows[:limit]
                return page
        page.total = seen  # every tier ran out before the page filled: all matches were seen
        return page

    # --- typos, type-ahead, owners --------------------------------------------------------------------

    def corrections(self, words: list[str]) -> dict[str, str]:
        """The most similar vocabulary word (pg_trgm) that still names something, per word of 3+ letters."""
        candidates = [w for w in dict.fromkeys(words) if len(w) >= 3]
        if not candidates:
            return {}
        exists = f"EXISTS (SELECT 1 FROM catalog_searchentry e WHERE {TERMS} @@ CAST(%s || s.value || %s AS tsquery))"
        sql = (
            "SELECT t.w, c.value FROM unnest(%s::text[]) AS t(w) CROSS JOIN LATERAL ("
            f" SELECT s.value FROM catalog_searchterm s WHERE s.kind = 'word' AND s.value %% t.w AND {exists}"
            " ORDER BY similarity(s.value, t.w) DESC, s.value LIMIT 1) c"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [candidates, "'#n:", "'"])  # vocabulary words are [0-9a-z]+: safe in quotes
            return {w: v for w, v in cursor.fetchall() if w != v}

    def suggest(self, query: Query, *, limit: int) -> list[tuple[int, float]]:
        """Names starting with the text (shortest first), then names holding its words (as prefixes)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT e.id, e.name FROM catalog_searchentry e"
                " WHERE lower(e.name) COLLATE \"C\" LIKE %s AND e.status <> 'removed'"
                ' ORDER BY lower(e.name) COLLATE "C", e.id LIMIT 200',
                [_like_prefix(query.raw)],
            )
            prefixed = sorted(cursor.fetchall(), key=lambda r: (len(r[1]), r[1], r[0]))[:limit]
            rows = [(int(i), 2.0) for i, _ in prefixed]
            if len(rows) < limit:
                cursor.execute(
                    f"SELECT e.id, e.name FROM catalog_searchentry e WHERE {TERMS} @@ %s::tsquery"
                    " AND e.status <> 'removed' AND e.vector @@ to_tsquery('simple', %s) LIMIT 100",
                    [self._gin(query, "#n:"), query.tsquery("A")],
                )
                seen = {i for i, _ in rows}
                more = sorted((r for r in cursor.fetchall() if r[0] not in seen), key=lambda r: (len(r[1]), r[1], r[0]))
                rows += [(int(i), 1.0) for i, _ in more[: limit - len(rows)]]
        return rows

    def owners(self, text: str, *, limit: int) -> list[str]:
        """Owners and teams whose name contains the text and who still own something."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.value FROM catalog_searchterm s WHERE s.kind = 'owner' AND strpos(lower(s.value), %s) > 0"
                " ORDER BY strpos(lower(s.value), %s) <> 1, length(s.value), s.value LIMIT 50",
                [text.lower(), text.lower()],
            )
            names = [v for (v,) in cursor.fetchall()]
            if not names:
                return []
            queries = [_lexeme(f"#f:owner:{n}") for n in names]
            cursor.execute(
                "SELECT t.n FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(n, q, i) WHERE EXISTS"
                f" (SELECT 1 FROM catalog_searchentry e WHERE {TERMS} @@ CAST(t.q AS tsquery)) ORDER BY t.i LIMIT %s",
                [names, queries, limit],
            )
            return [v for (v,) in cursor.fetchall()]


class SqliteBackend:
    """FTS5 with the trigram tokenizer (substrings of 3+ characters), ranked by bm25; exact counts only.

    The quickstart's catalogs are small: every search counts and ranks all its matches. Typos are
    corrected against the vocabulary with difflib.
    """

    facet_values = "JOIN json_each(m.facet_values) AS f"

    @staticmethod
    def _fts_query(terms: list[str]) -> str:
        return " AND ".join(f'"{t}"' for t in terms if len(t) >= 3)

    def _match(self, query: Query) -> tuple[str, list[Any]]:
        fts = self._fts_query(query.words)
        raw = query.raw
        if not fts:
            sql = (
                "SELECT e.id, e.project, e.kind, e.status, e.name, e.facet_values, 1.0 AS score"
                " FROM catalog_searchentry e WHERE lower(e.name) LIKE %s"
            )
            return sql, [raw + "%"]
        sql = """
            SELECT e.id, e.project, e.kind, e.status, e.name, e.facet_values,
                   -bm25(catalog_searchentry_fts, 10.0, 3.0, 1.0)
                   + CASE WHEN lower(e.name) = %s THEN 10 WHEN lower(e.name) LIKE %s THEN 3 ELSE 0 END
                   - CASE WHEN e.status = 'removed' THEN 20 ELSE 0 END AS score
            FROM catalog_searchentry_fts JOIN catalog_searchentry e ON e.id = catalog_searchentry_fts.rowid
            WHERE catalog_searchentry_fts MATCH %s
        """
        return sql, [raw, raw + "%", fts]

    def exact(self, query: Query, *, offset: int, limit: int, cap: int) -> tuple[Counts, Page] | None:
        match_sql, params = self._match(query)
        clauses: list[str] = []
        for name, value in query.filters:
            if name in COLUMN_FACETS:
                clauses.append(f"s.{name} = %s")
            else:
                clauses.append("EXISTS (SELECT 1 FROM json_each(s.facet_values) WHERE value = %s)")
                value = f"{name}:{value}"
            params.append(value)
        where = " AND ".join(clauses) or "1 = 1"
        filtered = f"SELECT s.id, s.project, s.kind, s.status, s.name, s.facet_values, s.score FROM ({match_sql}) s"
        column_parts = [f"SELECT 'f', '{c}:' || m.{c}, count(*) FROM m GROUP BY m.{c}" for c in COLUMN_FACETS]
        sql = (
            f"WITH m AS ({filtered} WHERE {where}) "
            + " UNION ALL ".join(column_parts)
            + f" UNION ALL SELECT 'f', f.value, count(*) FROM m {self.facet_values} GROUP BY f.value"
            " UNION ALL SELECT * FROM (SELECT 'h', CAST(m.id AS TEXT), m.score FROM m"
            " ORDER BY m.score DESC, m.name, m.id LIMIT %s OFFSET %s) page"
        )
        counts = Counts()
        hits: list[tuple[int, float]] = []
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, limit + 1, offset])
            for row_type, key, n in cursor.fetchall():
                if row_type == "f":
                    counts.add_facet(key, int(n))
                    if key.startswith("kind:"):
                        counts.rows += int(n)
                else:
                    hits.append((int(key), float(n)))
        hits.sort(key=lambda h: -h[1])  # UNION ALL keeps no order: the page is re-sorted (stable for ties)
        return counts, Page(rows=hits[:limit], has_next=len(hits) > limit, total=counts.rows)

    def sample(self, query: Query, *, scale: int, cap: int, markers: bool = False) -> Counts:
        found = self.exact(query, offset=0, limit=0, cap=cap)
        return found[0] if found else Counts()

    def ranked(self, query: Query, counts: Counts, *, offset: int, limit: int) -> Page:
        found = self.exact(query, offset=offset, limit=limit, cap=0)
        return found[1] if found else Page()

    def corrections(self, words: list[str]) -> dict[str, str]:
        from catalog.models.search import SearchTerm

        vocabulary = list(SearchTerm.objects.filter(kind=SearchTerm.Kind.WORD).values_list("value", flat=True))
        fixed = {w: (difflib.get_close_matches(w, vocabulary, n=1, cutoff=0.7) or [w])[0] for w in words}
        return {w: v for w, v in fixed.items() if w != v}

    def suggest(self, query: Query, *, limit: int) -> list[tuple[int, float]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT e.id FROM catalog_searchentry e WHERE lower(e.name) LIKE %s AND e.status <> 'removed'"
                " ORDER BY lower(e.name) NOT LIKE %s, length(e.name), e.name LIMIT %s",
                [f"%{query.raw}%", f"{query.raw}%", limit],
            )
            return [(int(i), 1.0) for (i,) in cursor.fetchall()]

    def owners(self, text: str, *, limit: int) -> list[str]:
        from django.db.models import Q

        from catalog.models.search import SearchEntry, SearchTerm

        names = SearchTerm.objects.filter(kind=SearchTerm.Kind.OWNER, value__icontains=text).values_list(
            "value", flat=True
        )
        ordered = sorted(names, key=lambda n: (not n.lower().startswith(text.lower()), len(n), n))
        live = []
        for name in ordered:
            if SearchEntry.objects.filter(Q(owner=name) | Q(team=name)).exists():
                live.append(name)
            if len(live) >= limit:
                break
        return live


def backend() -> PostgresBackend | SqliteBackend:
    """The backend for the portal's database."""
    return PostgresBackend() if connection.vendor == "postgresql" else SqliteBackend()
