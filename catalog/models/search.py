"""The search index: one denormalised entry per searchable thing, with its facet values, and its vocabulary.

Backend-specific columns and indexes (PostgreSQL: a weighted tsvector, a GIN index over its terms, facet
values and sample buckets, and a name btree; SQLite: an FTS5 table kept in step by triggers) are created
by migrations 0006 and 0007 and used only by catalog/search/.
"""

from __future__ import annotations

from django.db import models

from catalog.models.objects import CatalogObject, Feature


class SearchEntry(models.Model):
    """A catalog object or a feature, flattened for ranking: name (weight A), related names (B), prose (C)."""

    object = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)  # entity, data_source, feature_view, feature_service, feature
    subkind = models.CharField(max_length=32, blank=True)
    project = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    parent = models.CharField(max_length=255, blank=True, help_text="The view of a feature.")
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=255, blank=True)
    team = models.CharField(max_length=255, blank=True)
    related = models.TextField(blank=True, help_text="Feature, entity and tag words (weight B).")
    status = models.CharField(max_length=16)
    dtype = models.CharField(max_length=64, blank=True)
    # Multi-valued facets as ["entity:employee_id", "owner:…", "tag:team=…", "dtype:Float32", …]. Facet counts
    # read them from the matched rows; on PostgreSQL they are also terms of the GIN index, so filters narrow
    # the matches inside the index.
    facet_values = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["object"]), models.Index(fields=["kind", "status"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.project}/{self.name}"


class SearchTerm(models.Model):
    """The index's vocabulary: words of indexed names (typo correction) and owners/teams (type-ahead).

    Written by catalog.search.indexing next to the entries; a word whose entries are gone lingers until
    the next full rebuild, and search checks a correction still matches before using it.
    """

    class Kind(models.TextChoices):
        WORD = "word"
        OWNER = "owner"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="catalog_searchterm_kind_value")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
