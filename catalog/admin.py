"""Django admin for what admins manage by hand: owner teams (members, aliases) and each project's governance
settings. Registry objects, change requests and the audit log are not editable here: registry objects
change only through Feast (reviewed change requests), and audit events are append-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from catalog.models import Project, Team, TeamAlias


class TeamAliasInline(admin.TabularInline):  # type: ignore[type-arg]
    model = TeamAlias
    extra = 1
    help_text = "Owner strings (an email, an alias) that mean this team."


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "description"]
    search_fields = ["name", "aliases__alias", "members__username"]
    filter_horizontal = ["members"]
    inlines = [TeamAliasInline]


@admin.register(Project)
class ProjectGovernanceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Only the governance settings are editable; the rest mirrors the registry."""

    list_display = ["name", "status", "compatibility", "auto_apply", "breaking_approvals"]
    fields = ["name", "status", "registry_key", "repo_key", "compatibility", "auto_apply", "breaking_approvals"]
    readonly_fields = ["name", "status", "registry_key", "repo_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
