"""API tokens for programs: hashed at rest, looked up by a public prefix, scoped, expiring, revocable."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from catalog.models.base import TimestampedModel


class ApiToken(TimestampedModel):
    """A personal API token. Only `prefix` and the SHA-256 of the whole token are stored.

    The token reads `fpt_<prefix>_<secret>`; the secret is shown once, when the token is created.
    A token acts as its user, narrowed to its scopes: it never grants more than the user's roles.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read the catalog, jobs and audit"
        PROPOSE = "propose", "Propose changes, register models"
        APPROVE = "approve", "Approve or reject changes"
        OPERATE = "operate", "Sync, materialize, apply"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'ci-pipeline'.")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The token that created this one (over the API): never wider than it, revoked with it.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_expired(self) -> bool:
        """True once the expiry date has passed."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and not self.is_expired

    def has_scope(self, scope: str) -> bool:
        """True when the token carries `scope` (scopes are independent: `read` is needed to read)."""
        return scope in self.scopes


class LoginFailure(models.Model):
    """One failed password sign-in (catalog/services/logins.py counts them to lock out guessing)."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"failed sign-in as {self.username!r} from {self.address} at {self.created_at:%Y-%m-%d %H:%M:%S}"
