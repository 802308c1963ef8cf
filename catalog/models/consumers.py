"""Models (consumers) registered against feature services: they appear in lineage and in change impact."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from catalog.models.base import TimestampedModel
from catalog.models.objects import CatalogObject
from catalog.models.projects import Team


class ModelConsumer(TimestampedModel):
    """Model X (name, version) consumes feature service Y; owned by a person or team.

    `contract_hash` pins the service's vector contract the model was trained against (blank: not pinned).
    """

    service = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="consumers")
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=64, default="1")
    owner = models.CharField(max_length=255, help_text="A person's email or alias, or a team name.")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="models")
    link = models.URLField(max_length=1000, blank=True, help_text="Model registry, repository or dashboard.")
    description = models.TextField(blank=True)
    contract_hash = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "name", "version"], name="catalog_consumer_unique"),
        ]
        ordering = ["name", "version"]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("catalog:model_detail", args=[self.pk])
