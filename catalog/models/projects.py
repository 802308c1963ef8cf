"""Projects and teams."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import models

from catalog.models.base import TimestampedModel


class Status(models.TextChoices):
    """Lifecycle of a mirrored object."""

    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    REMOVED = "removed", "Removed"


class Compatibility(models.TextChoices):
    """How strictly a project's changes are classified (set by an admin)."""

    BACKWARD = "BACKWARD", "BACKWARD: consumers of the old schema keep working"
    FULL = "FULL", "FULL: old and new readers both keep working"
    NONE = "NONE", "NONE: only always-breaking changes (entities, join keys) count as breaking"


class Project(TimestampedModel):
    """A Feast project, as found in one governed registry, and its governance settings."""

    name = models.CharField(max_length=255, unique=True)
    registry_key = models.CharField(max_length=1024, db_index=True, help_text="The registry holding the project.")
    repo_key = models.CharField(
        max_length=1024, blank=True, help_text="The governed feature_store YAML naming this project (blank: read-only)."
    )
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=255, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    feast_created_at = models.DateTimeField(null=True, blank=True)
    feast_updated_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    # Governance (edited by admins; never touched by the sync)
    compatibility = models.CharField(max_length=16, choices=Compatibility.choices, default=Compatibility.BACKWARD)
    auto_apply = models.BooleanField(default=False, help_text="Apply change requests as soon as they are approved.")
    breaking_approvals = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Approvals a breaking change needs (blank: GOVERNANCE_BREAKING_APPROVALS)."
    )
    apply_locked_until = models.DateTimeField(null=True, blank=True)
    apply_lock_token = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(TimestampedModel):
    """An owning team, from Feast `owner` strings and the team tag (CATALOG_TEAM_TAG)."""

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(User, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamAlias(TimestampedModel):
    """Maps an owner string (an email, an alias) onto a team. Edited by admins."""

    alias = models.CharField(max_length=255, unique=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "team aliases"

    def __str__(self) -> str:
        return f"{self.alias} → {self.team}"
