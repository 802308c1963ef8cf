"""Sync bookkeeping and object history."""

from __future__ import annotations

from django.db import models

from catalog.models.objects import CatalogObject


class SyncState(models.Model):
    """One row per registry: the lease that keeps syncs from overlapping, and the last fingerprint."""

    registry_key = models.CharField(max_length=1024, unique=True)
    fingerprint = models.CharField(max_length=128, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    lock_token = models.CharField(max_length=64, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.registry_key


class SyncRun(models.Model):
    """One registry sync attempt, with what it changed."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        NOOP = "noop", "No change"
        SKIPPED = "skipped", "Skipped (another sync running)"
        FAILED = "failed", "Failed"

    registry_key = models.CharField(max_length=1024)
    project_filter = models.CharField(max_length=255, blank=True)
    trigger = models.CharField(max_length=32, default="manual")  # manual, schedule, button, apply, api
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=128, blank=True)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    out_of_band = models.PositiveIntegerField(default=0)
    skipped_objects = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"sync #{self.pk} {self.status}"


class ObjectVersion(models.Model):
    """A version of a catalog object: recorded by every sync that changed its content."""

    class Change(models.TextChoices):
        ADDED = "added", "Added"
        CHANGED = "changed", "Changed"
        REMOVED = "removed", "Removed"
        RESTORED = "restored", "Restored"

    object = models.ForeignKey(CatalogObject, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    change = models.CharField(max_length=16, choices=Change.choices)
    content_hash = models.CharField(max_length=64)
    snapshot = models.JSONField(help_text="The object's spec at this version.")
    changes = models.JSONField(default=list, blank=True, help_text="Field-level summary versus the previous version.")
    sync_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions")
    out_of_band = models.BooleanField(default=False, help_text="Changed outside the portal's own apply.")
    change_request = models.ForeignKey(
        "catalog.ChangeRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    recorded_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["object", "version"], name="catalog_version_unique")]
        ordering = ["object_id", "-version"]

    def __str__(self) -> str:
        return f"{self.object_id} v{self.version} ({self.change})"


class ExpectedChange(models.Model):
    """A content hash the portal itself is about to write (its own apply): a sync that sees it is in-band.

    The governance workflow records these before applying; the sync consumes them.
    """

    project_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    content_hash = models.CharField(max_length=64, blank=True, help_text="Empty: the object is expected to be removed.")
    source = models.CharField(max_length=255, help_text="What wrote it, e.g. change-request:42.")
    change_request = models.ForeignKey(
        "catalog.ChangeRequest", null=True, blank=True, on_delete=models.CASCADE, related_name="expected_changes"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project_name", "kind", "name"])]

    def __str__(self) -> str:
        return f"{self.project_name}/{self.kind}/{self.name} by {self.source}"
