"""Shared model bases."""

from django.db import models


class TimestampedModel(models.Model):
    """Adds created_at / updated_at (portal times, not Feast's)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
