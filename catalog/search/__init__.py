"""Catalog search: one interface over PostgreSQL full-text (one GIN index) and SQLite FTS5.

    results = search(user=request.user, q="tenur", filters={"kind": "feature"}, page=1)
    results.hits            # ranked SearchHit list for the page (name/description highlighted)
    results.total, results.pages, results.facets  # facet -> [(value, count), ...]
    results.total_exact, results.facets_exact     # False: "about N", estimated from a sample of matches

`suggest()` serves the header's type-ahead. The same ranking serves the browser and /api/v1/search/.
The index is written by `catalog.search.indexing.index_objects`, which the registry sync calls.

Counts: up to EXACT_LIMIT matches every count is exact. A broader search (a common word matches
thousands of entries) counts a deterministic 1-in-16 sample of its matches (1-in-256 past 64,000) and
scales it up: the total and the facet counts are then estimates, rounded to two significant figures and
flagged (`total_exact`, `facets_exact`, `sample_size`) so the page and the API can say "about". Paging
stays exact: `has_next` comes from the ranking itself, and the last page turns the total exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from catalog.models import SearchEntry
from catalog.models.objects import KIND_SLUG
from catalog.permissions import can_view_catalog
from catalog.search.backends import Counts, Page, Query, backend

# Facets a caller may filter on. Column facets hold one value per entry; the others live in facet_values.
COLUMN_FACETS = ("project", "kind", "status")
ROW_FACETS = ("entity", "owner", "org", "tag", "dtype")
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
FACET_VALUES_SHOWN = 12
# Up to this many matches (as the 1-in-16 probe sees them) every count is exact; past it, estimated.
EXACT_LIMIT = 2000
PROBE_SCALE = 16  # the first look at a query: a 1-in-16 sample of its matches
BROAD_SCALE = 256  # ... 1-in-256 when the 1-in-16 sample alone holds SAMPLE_CAP matches (64,000+)
SAMPLE_CAP = 4000


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
    """A page of hits, the total, and facet counts over all matches (exact, or estimated: see the flags)."""

    q: str
    filters: dict[str, str]
    hits: list[SearchHit] = field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    corrected: str = ""  # the query actually run when the one typed matched nothing (typo correction)
    total_exact: bool = True  # False: `total` is an estimate ("about"), rounded to two significant figures
    facets_exact: bool = True  # False: facet counts are estimates from `sample_size` sampled matches
    sample_size: int = 0  # matches the estimates were computed from (0 when every count is exact)
    sample_rate: int = 0  # the estimates counted 1 in this many matches
    has_next: bool = False  # another page follows (always exact, even when the total is estimated)

    @property
    def pages(self) -> int:
        """Number of pages (at least up to the next one when the total is an estimate)."""
        pages = max(1, -(-self.total // self.per_page))
        return pages if self.total_exact else max(pages, self.page + int(self.has_next))

    @property
    def total_label(self) -> str:
        """The total as shown: "2,536 results", or "about 18,000 results" when estimated."""
        text = f"{self.total:,} result{'' if self.total == 1 else 's'}"
        return text if self.total_exact else f"about {text}"

    @property
    def estimate_note(self) -> str:
        """How the estimates were made ("" when every count is exact)."""
        if self.facets_exact and self.total_exact:
            return ""
        return (
            f"Estimated from a 1-in-{self.sample_rate} sample of the matches ({self.sample_size:,} counted), "
            "rounded to two significant figures."
        )


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


def about(n: int) -> int:
    """An estimate as it is shown: two significant figures (17,792 -> 18,000), small numbers as they are."""
    if n < 100:
        return n
    digits = len(str(n)) - 2
    return int(round(n, -digits))


def _clean_query(q: str) -> str:
    """The query as the database may see it: no control characters (PostgreSQL rejects NUL), at most 200 characters."""
    return "".join(ch for ch in q if ch >= " ")[:200]


def _clean_filters(filters: Mapping[str, str] | None) -> dict[str, str]:
    return {k: _clean_query(str(v))[:255] for k, v in (filters or {}).items() if k in FACETS and v not in (None, "")}


def _facets(counts: Counts, *, scale: int) -> dict[str, list[tuple[str, int]]]:
    facets: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    for name, values in counts.facets.items():
        scaled = [(v, n * scale if scale == 1 else about(n * scale)) for v, n in values.items()]
        facets[name] = sorted(scaled, key=lambda item: (-item[1], item[0]))
    return facets


def _hits(rows: list[tuple[int, float]], terms: list[str]) -> list[SearchHit]:
    entries = {
        e.pk: e for e in SearchEntry.objects.filter(pk__in=[r[0] for r in rows]).defer("related", "facet_values")
    }
    hits = []
    for pk, score in rows:
        e = entries.get(pk)
        if e is None:  # removed between the ranking and this read (a sync committed in between)
            continue
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


def _count_and_rank(results: SearchResults, query: Query) -> Page:
    """Fill the totals and facets of `results` and return its page of the ranking."""
    engine = backend()
    offset = (results.page - 1) * results.per_page
    counts = engine.sample(query, scale=PROBE_SCALE, cap=SAMPLE_CAP)
    if counts.rows >= SAMPLE_CAP:
        counts = engine.sample(query, scale=BROAD_SCALE, cap=SAMPLE_CAP)
    at_least = 0
    if counts.scale == 1 or counts.rows * counts.scale <= EXACT_LIMIT:  # (scale 1: a backend that counts all)
        cap = 4 * EXACT_LIMIT
        found = engine.exact(query, offset=offset, limit=results.per_page, cap=cap)
        if found is not None:
            exact, page = found
            results.total, results.facets = exact.rows, _facets(exact, scale=1)
            results.has_next = page.has_next
            if results.page > results.pages and results.total:
                results.page = results.pages
                return _count_and_rank(results, query)
            return page
        # More than `cap` matches where the sample suggested few (a freak sample, or an index built before
        # it held sampled words): count the same sample through its markers; the total is at least cap + 1.
        counts = engine.sample(query, scale=PROBE_SCALE, cap=SAMPLE_CAP, markers=True)
        at_least = cap + 1
    # Broad: totals and facets from the sample, the page from the ranking itself.
    results.total = about(max(counts.rows * counts.scale, at_least))
    results.facets = _facets(counts, scale=counts.scale)
    results.total_exact = results.facets_exact = False
    results.sample_size, results.sample_rate = counts.rows, counts.scale
    page = engine.ranked(query, counts, offset=offset, limit=results.per_page)
    results.has_next = page.has_next
    if page.total is not None:  # the ranking ran out of matches: it has seen (and counted) them all
        results.total, results.total_exact = page.total, True
        if not page.rows and results.page > 1 and results.total:
            results.page = results.pages
            page = engine.ranked(query, counts, offset=(results.page - 1) * results.per_page, limit=results.per_page)
            results.has_next = page.has_next
    return page


def search(
    *, user: Any, q: str, filters: Mapping[str, str] | None = None, page: int = 1, per_page: int = 20
) -> SearchResults:
    """Ranked search over names, descriptions, tags, owners and feature names, with facet counts.

    Filters: project, kind (entity, data_source, feature_view, feature_service, feature), status
    (active, deprecated, removed), entity, owner (an owner string or team), tag (`key=value`), dtype.
    When nothing matches, each word is replaced by the most similar indexed name word (typos) and the
    search runs again; `corrected` then holds the query that was run.
    """
    q = _clean_query(q)
    clean = _clean_filters(filters)
    per_page = max(1, min(int(per_page), MAX_PAGE_SIZE))
    results = SearchResults(q=q, filters=clean, page=max(1, int(page)), per_page=per_page)
    results.facets = {name: [] for name in FACETS}
    if not can_view_catalog(user):
        return results
    query = Query.parse(q, clean)
    if not query.words:
        return results
    page_rows = _count_and_rank(results, query)
    if results.total == 0:
        fixed = backend().corrections(query.words)
        if fixed:
            corrected = query.with_words(fixed)
            results.corrected = corrected.raw
            page_rows = _count_and_rank(results, corrected)
            query = corrected
    results.hits = _hits(page_rows.rows, query.words)
    return results


def suggest(*, user: Any, q: str, limit: int = 8) -> list[SearchHit]:
    """Type-ahead: active names starting with (or holding the words of, or close to) what was typed."""
    if not can_view_catalog(user):
        return []
    q = _clean_query(q)
    query = Query.parse(q)
    if not query.words:
        return []
    engine = backend()
    rows = engine.suggest(query, limit=limit)
    if not rows:  # a typo: suggest what the corrected words would
        fixed = engine.corrections(query.words)
        if fixed:
            query = query.with_words(fixed)
            rows = engine.suggest(query, limit=limit)
    hits = _hits(rows, query.words)
    return hits + _owner_hits(q, limit=max(0, min(3, limit - len(hits))))


def _owner_hits(q: str, *, limit: int) -> list[SearchHit]:
    """Owners and teams whose name contains the text (the owner page lists what they own)."""
    if limit <= 0 or len(q) < 2:
        return []
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
        for name in backend().owners(q, limit=limit)
    ]
