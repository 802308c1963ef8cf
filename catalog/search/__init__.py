"""Catalog search: one interface over PostgreSQL full-text + pg_trgm and SQLite FTS5.

    results = search(user=request.user, q="tenur", filters={"kind": "feature"}, page=1)
    results.hits            # ranked SearchHit list for the page (name/description highlighted)
    results.total, results.pages, results.facets  # facet -> [(value, count), ...]

`suggest()` serves the header's type-ahead. The same ranking serves the browser and /api/v1/search/.
The index is written by `catalog.search.indexing.index_objects`, which the registry sync calls.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from catalog.models import SearchEntry
from catalog.models.objects import KIND_SLUG
from catalog.permissions import can_view_catalog
from catalog.search.backends import backend, words

# Facets a caller may filter on. Column facets hold one value per entry; the others live in facet_values.
COLUMN_FACETS = ("project", "kind", "status")
ROW_FACETS = ("entity", "owner", "tag", "dtype")
FACETS = COLUMN_FACETS + ROW_FACETS
KIND_LABELS = {
    "entity": "Entity",
    "data_source": "Data source",
    "feature_view": "Feature view",
    "feature_service": "Feature service",
    "feature": "Feature",
    "owner": "Owner / team",
}
MAX_PAGE_SIZE = 100
FUZZY_BELOW = 1  # no full-text match at all: look for similar names instead (typos)
FACET_VALUES_SHOWN = 12


@dataclass(frozen=True)
class SearchHit:
    """One ranked result."""

    id: int
    kind: str
    subkind: str
    project: str
    name: str
    parent: str
    description: str
    owner: str
    team: str
    status: str
    dtype: str
    score: float
    url: str
    name_html: SafeString
    snippet_html: SafeString

    @property
    def kind_label(self) -> str:
        """Human label of the kind."""
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def reference(self) -> str:
        """`view:feature` for features, the name otherwise."""
        return f"{self.parent}:{self.name}" if self.kind == "feature" else self.name


@dataclass
class SearchResults:
    """A page of hits, the total, and facet counts over all matches."""

    q: str
    filters: dict[str, str]
    hits: list[SearchHit] = field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    corrected: str = ""  # the query actually run when the one typed matched nothing (SQLite typo fallback)

    @property
    def pages(self) -> int:
        """Number of pages."""
        return max(1, -(-self.total // self.per_page))


def entry_url(kind: str, project: str, name: str, parent: str = "") -> str:
    """The page of an indexed object or feature."""
    if kind == "feature":
        return reverse("catalog:feature_detail", args=[project, parent, name])
    return reverse("catalog:object_detail", args=[project, KIND_SLUG[kind], name])


def highlight(text: str, terms: list[str], *, limit: int | None = None) -> SafeString:
    """HTML-escape `text` and wrap each term (a prefix of a word, case-insensitive) in <mark>."""
    if limit is not None and len(text) > limit:
        first = min((m.start() for t in terms if (m := re.search(re.escape(t), text, re.IGNORECASE))), default=0)
        start = max(0, first - limit // 3)
        text = ("…" if start else "") + text[start : start + limit] + ("…" if start + limit < len(text) else "")
    if not terms:
        return mark_safe(escape(text))
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(escape(text[pos:]))
    return mark_safe("".join(out))  # every piece is escaped above


def _clean_query(q: str) -> str:
    """The query as the database may see it: no control characters (PostgreSQL rejects NUL), at most 200 characters."""
    return "".join(ch for ch in q if ch >= " ")[:200]


def _clean_filters(filters: Mapping[str, str] | None) -> dict[str, str]:
    return {k: _clean_query(str(v))[:255] for k, v in (filters or {}).items() if k in FACETS and v not in (None, "")}


def _filtered_sql(
    match_sql: str, match_params: list[Any], filters: dict[str, str], *, facet_filter: str
) -> tuple[str, list[Any]]:
    clauses, params = [], list(match_params)
    for name in COLUMN_FACETS:
        if name in filters:
            clauses.append(f"s.{name} = %s")
            params.append(filters[name])
    for name in ROW_FACETS:
        if name in filters:
            clauses.append(facet_filter)
            params.append(f"{name}:{filters[name]}")
    where = " AND ".join(clauses) or "1 = 1"
    return (
        f"SELECT s.id, s.project, s.kind, s.status, s.name, s.facet_values, s.score FROM ({match_sql}) s WHERE {where}",
        params,
    )


def _run(
    filtered: str, params: list[Any], *, facet_values: str, limit: int, offset: int
) -> tuple[dict[str, list[tuple[str, int]]], list[tuple[int, float]]]:
    """One round trip: the matches are computed once (a materialised CTE), then counted per facet and paged."""
    column_parts = [f"SELECT 'f', '{c}', m.{c}, count(*) FROM m GROUP BY m.{c}" for c in COLUMN_FACETS]
    sql = (
        f"WITH m AS MATERIALIZED ({filtered}) "
        + " UNION ALL ".join(column_parts)
        + f" UNION ALL SELECT 'v', f.value, '', count(*) FROM m {facet_values} GROUP BY f.value"
        " UNION ALL SELECT * FROM (SELECT 'h', CAST(m.id AS TEXT), m.name, m.score FROM m"
        " ORDER BY m.score DESC, m.name, m.id LIMIT %s OFFSET %s) page"
    )
    counts: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    hits: list[tuple[float, str, int]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        for row_type, a, b, n in cursor.fetchall():
            if row_type == "f":
                counts[a].append((b, int(n)))
            elif row_type == "v":
                facet, _, value = a.partition(":")
                counts.setdefault(facet, []).append((value, int(n)))
            else:
                hits.append((float(n), b, int(a)))
    facets = {k: sorted(v, key=lambda item: (-item[1], item[0])) for k, v in counts.items()}
    hits.sort(key=lambda h: (-h[0], h[1], h[2]))
    return facets, [(pk, score) for score, _, pk in hits]


def _hits(rows: list[tuple[int, float]], terms: list[str]) -> list[SearchHit]:
    entries = {e.pk: e for e in SearchEntry.objects.filter(pk__in=[r[0] for r in rows])}
    hits = []
    for pk, score in rows:
        e = entries[pk]
        hits.append(
            SearchHit(
                id=pk,
                kind=e.kind,
                subkind=e.subkind,
                project=e.project,
                name=e.name,
                parent=e.parent,
                description=e.description,
                owner=e.owner,
                team=e.team,
                status=e.status,
                dtype=e.dtype,
                score=float(score),
                url=entry_url(e.kind, e.project, e.name, e.parent),
                name_html=highlight(e.name, terms),
                snippet_html=highlight(e.description, terms, limit=220),
            )
        )
    return hits


def _correct(q: str) -> str:
    """Closest indexed names to each word (the SQLite backend's typo tolerance; pg_trgm covers PostgreSQL)."""
    names = list(SearchEntry.objects.values_list("name", flat=True).distinct()[:50000])
    vocabulary = sorted({w for n in names for w in words(n.replace("_", " "))} | {n.lower() for n in names})
    fixed = [(difflib.get_close_matches(w, vocabulary, n=1, cutoff=0.7) or [w])[0] for w in words(q)]
    return " ".join(fixed)


def _set_typo_threshold() -> None:
    """How similar a name must be to count as a typo of the query (pg_trgm's default 0.6 is too strict)."""
    with connection.cursor() as cursor:
        cursor.execute("SET pg_trgm.word_similarity_threshold = 0.3")


def search(
    *, user: Any, q: str, filters: Mapping[str, str] | None = None, page: int = 1, per_page: int = 20
) -> SearchResults:
    """Ranked search over names, descriptions, tags, owners and feature names, with facet counts.

    Filters: project, kind (entity, data_source, feature_view, feature_service, feature), status
    (active, deprecated, removed), entity, owner (an owner string or team), tag (`key=value`), dtype.
    """
    q = _clean_query(q)
    clean = _clean_filters(filters)
    per_page = max(1, min(int(per_page), MAX_PAGE_SIZE))
    page = max(1, int(page))
    results = SearchResults(q=q, filters=clean, page=page, per_page=per_page)
    if not can_view_catalog(user):
        return results
    engine = backend()
    if engine.match(q) is None:
        return results
    rows: list[tuple[int, float]] = []
    # Full text first; only when it finds nothing, widen to similar names (typos): the common case stays
    # on the full-text index alone.
    for fuzzy in (False, True) if engine.supports_fuzzy else (False,):
        match = engine.match(q, fuzzy=fuzzy)
        assert match is not None
        if fuzzy:
            _set_typo_threshold()
        filtered, params = _filtered_sql(match.sql, match.params, clean, facet_filter=engine.facet_filter)
        results.facets, rows = _run(
            filtered, params, facet_values=engine.facet_values, limit=per_page, offset=(page - 1) * per_page
        )
        results.total = sum(n for _, n in results.facets["kind"])
        if results.total >= FUZZY_BELOW:
            break
    if results.total == 0 and not engine.supports_fuzzy:
        corrected = _correct(q)
        if corrected and corrected != " ".join(words(q)):
            retry = search(user=user, q=corrected, filters=clean, page=page, per_page=per_page)
            retry.corrected, retry.q = corrected, q
            return retry
    if page > results.pages and results.total:
        return search(user=user, q=q, filters=clean, page=results.pages, per_page=per_page)
    results.hits = _hits(rows, words(q))
    return results


def suggest(*, user: Any, q: str, limit: int = 8) -> list[SearchHit]:
    """Type-ahead: active names starting with (or close to) what was typed, best first."""
    if not can_view_catalog(user):
        return []
    q = _clean_query(q)
    engine = backend()
    rows: list[tuple[int, float]] = []
    for fuzzy in (False, True) if engine.supports_fuzzy else (False,):
        match = engine.suggest(q, fuzzy=fuzzy)
        if match is None:
            return []
        sql = (
            f"SELECT s.id, s.score FROM ({match.sql}) s JOIN catalog_searchentry e ON e.id = s.id "
            "WHERE e.status <> 'removed' ORDER BY s.score DESC, length(e.name), e.name LIMIT %s"
        )
        if fuzzy:
            _set_typo_threshold()
        with connection.cursor() as cursor:
            cursor.execute(sql, [*match.params, limit])
            rows = [(r[0], r[1]) for r in cursor.fetchall()]
        if len(rows) >= limit:
            break
    if not rows and not engine.supports_fuzzy:  # SQLite: suggest the names a typo was probably meant as
        corrected = _correct(q)
        if corrected and corrected != " ".join(words(q)):
            return suggest(user=user, q=corrected, limit=limit)
    hits = _hits(rows, words(q))
    return hits + _owner_hits(q, limit=max(0, min(3, limit - len(hits))))


def _owner_hits(q: str, *, limit: int) -> list[SearchHit]:
    """Owners and teams whose name contains the text (the owner page lists what they own)."""
    if limit <= 0 or len(q) < 2:
        return []
    names = sorted(
        {
            *SearchEntry.objects.filter(owner__icontains=q).values_list("owner", flat=True).distinct()[:limit],
            *SearchEntry.objects.filter(team__icontains=q).values_list("team", flat=True).distinct()[:limit],
        },
        key=lambda n: (not n.lower().startswith(q.lower()), len(n), n),
    )[:limit]
    empty = mark_safe("")
    return [
        SearchHit(
            id=0,
            kind="owner",
            subkind="",
            project="",
            name=name,
            parent="",
            description="",
            owner=name,
            team="",
            status="active",
            dtype="",
            score=0.0,
            url=reverse("catalog:owner_detail", args=[name]),
            name_html=highlight(name, [q.lower()]),
            snippet_html=empty,
        )
        for name in names
    ]
