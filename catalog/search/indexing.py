"""Build the search index (SearchEntry rows with their facet values, and the vocabulary) from catalog rows.

The sync calls `index_objects` inside its transaction for every object it added, changed, removed or
restored, so the index never disagrees with the catalog it describes. The vocabulary (SearchTerm: words
of names for typo correction, owners and teams for the type-ahead) only grows here; search checks that
a word or owner still names something before offering it, and `rebuild_index` starts it afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from django.db import connection

from catalog.bulk import bulk_insert
from catalog.models import CatalogObject, Feature, SearchEntry, ServiceFeature, Status
from catalog.models.search import SearchTerm
from catalog.search.backends import WORD

BATCH = 2000
FLUSH_AFTER = 1000  # entries written at once past which the GIN pending list is merged right away


class _Field(NamedTuple):
    pk: int
    view_id: int
    name: str
    dtype: str
    description: str
    tags: dict[str, Any]
    status: str


def _tag_words(tags: dict[str, Any]) -> list[str]:
    return [f"{k} {v}" for k, v in sorted(tags.items())]


def _tag_facets(tags: dict[str, Any]) -> list[str]:
    return [f"{k}={v}"[:255] for k, v in sorted(tags.items())]


def _documents(objects: Sequence[CatalogObject]) -> list[tuple[SearchEntry, list[tuple[str, str]]]]:
    ids = [o.pk for o in objects]
    features: dict[int, list[_Field]] = {}
    for row in (
        Feature.objects.filter(view_id__in=ids)
        .order_by("view_id", "position")
        .values_list("id", "view_id", "name", "dtype", "description", "tags", "status")
    ):
        features.setdefault(row[1], []).append(_Field(*row))
    vectors: dict[int, list[str]] = {}
    for sid, view, feat in ServiceFeature.objects.filter(service_id__in=ids).values_list(
        "service_id", "view_name", "feature_name"
    ):
        vectors.setdefault(sid, []).extend([view, feat])

    docs: list[tuple[SearchEntry, list[tuple[str, str]]]] = []
    for obj in objects:
        team = obj.team.name if obj.team else ""
        owner_facets = [("owner", v[:255]) for v in dict.fromkeys([obj.owner, team]) if v]
        tag_facets = [("tag", t) for t in _tag_facets(obj.tags)]
        entity_names = list(obj.entity_names) if obj.kind == CatalogObject.Kind.FEATURE_VIEW else []
        if obj.kind == CatalogObject.Kind.ENTITY:
            entity_names = [obj.name]
        entity_facets = [("entity", e[:255]) for e in entity_names]
        org = str(obj.spec.get("org") or "") if obj.kind == CatalogObject.Kind.FEATURE_VIEW else ""
        org_facets = [("org", org[:255])] if org else []  # Feast's org of a view, and of its features
        own_features = features.get(obj.pk, [])
        related = [
            *(f.name for f in own_features if f.status == Status.ACTIVE),
            *entity_names,
            *obj.join_keys,
            *vectors.get(obj.pk, []),
            *_tag_words(obj.tags),
            obj.batch_source_name,
            obj.stream_source_name,
        ]
        dtypes = sorted({f.dtype for f in own_features if f.status == Status.ACTIVE})
        entry = SearchEntry(
            object_id=obj.pk,
            kind=obj.kind,
            subkind=obj.subkind,
            project=obj.project.name,
            name=obj.name,
            description=obj.description,
            owner=obj.owner,
            team=team,
            related=" ".join(r for r in related if r),
            status=obj.status,
            dtype=obj.value_type,
        )
        docs.append((entry, [*owner_facets, *org_facets, *tag_facets, *entity_facets, *(("dtype", d) for d in dtypes)]))
        if obj.kind != CatalogObject.Kind.FEATURE_VIEW:
            continue
        for f in own_features:
            status = Status.REMOVED if Status.REMOVED in (f.status, obj.status) else obj.status
            fentry = SearchEntry(
                object_id=obj.pk,
                feature_id=f.pk,
                kind="feature",
                subkind=obj.subkind,
                project=obj.project.name,
                name=f.name,
                parent=obj.name,
                description=f.description,
                owner=obj.owner,
                team=team,
                related=" ".join([*entity_names, *_tag_words(f.tags)]),
                status=status,
                dtype=f.dtype,
            )
            facets = [*owner_facets, *org_facets, *entity_facets, ("dtype", f.dtype)]
            facets += [("tag", t) for t in dict.fromkeys(_tag_facets(obj.tags) + _tag_facets(f.tags))]
            docs.append((fentry, facets))
    return docs


def index_objects(object_ids: Iterable[int]) -> int:
    """(Re)build the entries of these catalog objects and their features; returns entries written."""
    ids = sorted(set(object_ids))
    written = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        SearchEntry.objects.filter(object_id__in=chunk).delete()
        objects = list(CatalogObject.objects.filter(pk__in=chunk).select_related("project", "team"))
        docs = _documents(objects)
        if not docs:
            continue
        for e, fs in docs:
            e.facet_values = [f"{f}:{v}" for f, v in fs]
        entries = [e for e, _ in docs]
        bulk_insert(SearchEntry, entries)
        _add_vocabulary(entries)
        written += len(entries)
    if written >= FLUSH_AFTER and connection.vendor == "postgresql":
        # A large import leaves up to 4 MB of new terms in the GIN index's pending list, which every search
        # would scan until autovacuum merges it: merge it now.
        with connection.cursor() as cursor:
            cursor.execute("SELECT gin_clean_pending_list('catalog_searchentry_terms'::regclass)")
    return written


def vocabulary_words(name: str) -> set[str]:
    """The words of a name worth correcting a typo to: 3+ letters, not a number."""
    return {w for w in WORD.findall(name.lower()) if len(w) >= 3 and not w.isdigit()}


def _add_vocabulary(entries: Sequence[SearchEntry]) -> None:
    found: set[str] = set()
    owners: set[str] = set()
    for e in entries:
        found |= vocabulary_words(e.name)
        owners.update(o[:255] for o in (e.owner, e.team) if o)
    terms = [SearchTerm(kind=SearchTerm.Kind.WORD, value=w[:255]) for w in sorted(found)]
    terms += [SearchTerm(kind=SearchTerm.Kind.OWNER, value=o) for o in sorted(owners)]
    SearchTerm.objects.bulk_create(terms, batch_size=2000, ignore_conflicts=True)


def rebuild_index() -> int:
    """Rebuild the whole index (after a migration, or with `manage.py rebuild_search_index`)."""
    SearchEntry.objects.all().delete()
    SearchTerm.objects.all().delete()
    return index_objects(CatalogObject.objects.values_list("pk", flat=True))
