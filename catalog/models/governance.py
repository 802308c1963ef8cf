"""Change requests: a proposed set of registry protos, its plan, its approvals and its apply."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from catalog.models.base import TimestampedModel
from catalog.models.projects import Project, Team


class Severity(models.TextChoices):
    """How a change is classified (worst item wins)."""

    SAFE = "safe", "Safe"
    RISKY = "risky", "Risky"
    BREAKING = "breaking", "Breaking"


SEVERITY_ORDER = {Severity.SAFE: 0, Severity.RISKY: 1, Severity.BREAKING: 2}


class ChangeRequest(TimestampedModel):
    """A reviewed change to one project's registry objects.

    `proposal` holds the serialized protos to apply (base64) and `plan` the classified, field-level
    diff against the registry at `base_fingerprint`. Approvals count only for the current `revision`:
    every re-plan bumps it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        STALE = "stale", "Stale (registry changed)"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN = (Status.DRAFT, Status.SUBMITTED, Status.APPROVED, Status.STALE, Status.FAILED)
    EDITABLE = (Status.DRAFT, Status.SUBMITTED, Status.APPROVED, Status.STALE, Status.REJECTED, Status.FAILED)
    # The request a branch's CI keeps revising (one per project, repository and branch): any not yet applied
    # or withdrawn. Once it is, the branch's next run opens a new one.
    BRANCH_LIVE = (*EDITABLE, Status.APPLYING)

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded feature repo"
        EDIT = "edit", "Edits"

    class Mode(models.TextChoices):
        PARTIAL = "partial", "Partial (only what it names)"
        FULL = "full", "Whole project (deletes what it omits)"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="change_requests")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PARTIAL)
    revision = models.PositiveIntegerField(default=1)
    proposal = models.JSONField(default=dict, help_text="upserts/deletes as base64 protos, plus the edits or files.")
    plan = models.JSONField(default=dict, help_text="The classified, field-level diff.")
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.SAFE, db_index=True)
    base_fingerprint = models.CharField(max_length=64, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    required_teams = models.JSONField(default=list, blank=True, help_text="[{id, name, objects}]")
    planned_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    apply_job_id = models.BigIntegerField(null=True, blank=True)
    apply_result = models.JSONField(default=dict, blank=True)
    stale_reason = models.TextField(blank=True)
    external_repo = models.CharField(
        max_length=255, blank=True, help_text="The git repository CI proposed it from, e.g. 'acme/features'."
    )
    external_branch = models.CharField(max_length=255, blank=True, help_text="The branch CI proposed it from.")
    external_sha = models.CharField(max_length=64, blank=True, help_text="The commit its current plan came from.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "status"]),
            models.Index(fields=["external_repo", "external_branch"], name="catalog_cr_external_ref"),
        ]
        constraints = [
            # One live request per branch: CI re-runs revise it (catalog.services.change_requests
            # change_request_propose_for_ref); two runs racing to open it meet here.
            models.UniqueConstraint(
                fields=["project", "external_repo", "external_branch"],
                condition=~Q(external_repo="")
                & Q(status__in=["draft", "submitted", "approved", "stale", "rejected", "failed", "applying"]),
                name="catalog_cr_one_live_per_branch",
            ),
        ]

    def __str__(self) -> str:
        return f"CR-{self.pk}: {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("catalog:change_request_detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    def plan_keys(self) -> list[str]:
        """The objects the request writes, as "kind:name"."""
        return sorted(
            f"{o['kind']}:{o['name']}" for o in [*self.proposal.get("upserts", []), *self.proposal.get("deletes", [])]
        )


class ChangeRequestObject(models.Model):
    """One object a change request's current plan touches (kind, name): what object pages query to list the
    open requests about them, without reading every plan. Rewritten with each plan."""

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="touches")
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=1024)

    class Meta:
        indexes = [models.Index(fields=["kind", "name"], name="catalog_cr_touches_kind_name")]
        constraints = [
            models.UniqueConstraint(fields=["change_request", "kind", "name"], name="catalog_cr_touches_once")
        ]

    def __str__(self) -> str:
        return f"CR-{self.change_request_id} touches {self.kind} {self.name}"


class Approval(models.Model):
    """An approval, rejection or admin override on one revision of a change request."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        OVERRIDE = "override", "Admin override of a team approval"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    revision = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True)
    teams = models.JSONField(default=list, blank=True, help_text="Required teams this approval counted for.")
    override_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "revision", "user"],
                condition=Q(decision="approve"),
                name="catalog_approval_once_per_revision",
            ),
            models.UniqueConstraint(
                fields=["change_request", "revision", "override_team"],
                condition=Q(decision="override"),
                name="catalog_override_once_per_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.decision} CR-{self.change_request_id} r{self.revision}"


class ChangeRequestComment(models.Model):
    """A comment in a change request's discussion."""

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment on CR-{self.change_request_id} by {self.author}"
