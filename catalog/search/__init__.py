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

# Facets a caller may filter on. Column facets hold one value per entry; the others are SearchFacet rows.
COLUMN_FACETS = ("project", "kind", "status")
ROW_FACETS = ("entity", "owner", "tag", "dtype")
FACETS = COLUMN_FACETS + ROW_FACETS
KIND_LABELS = {
    "entity": "Entity",
    "data_source": "Data source",
    "feature_view": "Feature view",
    "feature_service": "Feature service",
    "feature": "Feature",
}
MAX_PAGE_SIZE = 100
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
        first = min((m.start() for t in terms if (m := re.search(re.escape(t), text, re.I))), default=0)
        start = max(0, first - limit // 3)
        text = ("…" if start else "") + text[start : start + limit] + ("…" if start + limit < len(text) else "")
    if not terms:
        return mark_safe(escape(text))  # noqa: S308 (escaped just here)
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.I)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(escape(text[pos:]))
    return mark_safe("".join(out))  # noqa: S308 (every piece is escaped)


def _clean_filters(filters: Mapping[str, str] | None) -> dict[str, str]:
    return {k: str(v)[:255] for k, v in (filters or {}).items() if k in FACETS and v not in (None, "")}


def _filtered_sql(match_sql: str, match_params: list[Any], filters: dict[str, str]) -> tuple[str, list[Any]]:
    clauses, params = [], list(match_params)
    for name in COLUMN_FACETS:
        if name in filters:
            clauses.append(f"e.{name} = %s")
            params.append(filters[name])
    for name in ROW_FACETS:
        if name in filters:
            clauses.append("e.id IN (SELECT entry_id FROM catalog_searchfacet WHERE facet = %s AND value = %s)")
            params += [name, filters[name]]
    where = " AND ".join(clauses) or "1 = 1"
    sql = f"SELECT s.id, s.score FROM ({match_sql}) s JOIN catalog_searchentry e ON e.id = s.id WHERE {where}"
    return sql, params


def _facets(filtered: str, params: list[Any]) -> dict[str, list[tuple[str, int]]]:
    column_parts = [
        f"SELECT '{c}', e.{c}, count(*) FROM filtered JOIN catalog_searchentry e ON e.id = filtered.id GROUP BY e.{c}"
        for c in COLUMN_FACETS
    ]
    sql = (
        f"WITH filtered AS ({filtered}) "
        + " UNION ALL ".join(column_parts)
        + " UNION ALL SELECT f.facet, f.value, count(*) FROM catalog_searchfacet f"
        " JOIN filtered ON f.entry_id = filtered.id GROUP BY f.facet, f.value"
    )
    counts: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for facet, value, n in cursor.fetchall():
            counts[facet].append((value, n))
    return {k: sorted(v, key=lambda item: (-item[1], item[0])) for k, v in counts.items()}


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


def search(
    *, user: Any, q: str, filters: Mapping[str, str] | None = None, page: int = 1, per_page: int = 20
) -> SearchResults:
    """Ranked search over names, descriptions, tags, owners and feature names, with facet counts.

    Filters: project, kind (entity, data_source, feature_view, feature_service, feature), status
    (active, deprecated, removed), entity, owner (an owner string or team), tag (`key=value`), dtype.
    """
    clean = _clean_filters(filters)
    per_page = max(1, min(int(per_page), MAX_PAGE_SIZE))
    page = max(1, int(page))
    results = SearchResults(q=q, filters=clean, page=page, per_page=per_page)
    if not can_view_catalog(user):
        return results
    engine = backend()
    match = engine.match(q)
    if match is None:
        return results
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # typo tolerance of the trigram match (default 0.6 is too strict)
            cursor.execute("SET pg_trgm.word_similarity_threshold = 0.3")
    filtered, params = _filtered_sql(match.sql, match.params, clean)
    results.facets = _facets(filtered, params)
    results.total = sum(n for _, n in results.facets["kind"])
    if results.total == 0 and connection.vendor != "postgresql":
        corrected = _correct(q)
        if corrected and corrected != " ".join(words(q)):
            retry = search(user=user, q=corrected, filters=clean, page=page, per_page=per_page)
            retry.corrected, retry.q = corrected, q
            return retry
    results.page = min(page, results.pages)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{filtered} ORDER BY s.score DESC, e.name, e.id LIMIT %s OFFSET %s",
            [*params, per_page, (results.page - 1) * per_page],
        )
        rows = [(r[0], r[1]) for r in cursor.fetchall()]
    results.hits = _hits(rows, words(q))
    return results


def suggest(*, user: Any, q: str, limit: int = 8) -> list[SearchHit]:
    """Type-ahead: active names starting with (or close to) what was typed, best first."""
    if not can_view_catalog(user):
        return []
    match = backend().suggest(q, limit)
    if match is None:
        return []
    sql = (
        f"SELECT s.id, s.score FROM ({match.sql}) s JOIN catalog_searchentry e ON e.id = s.id "
        "WHERE e.status <> 'removed' ORDER BY s.score DESC, length(e.name), e.name LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*match.params, limit])
        rows = [(r[0], r[1]) for r in cursor.fetchall()]
    return _hits(rows, words(q))
