"""Django admin for what admins manage by hand: owner teams (members, aliases) and each project's governance
settings. Registry objects, change requests and the audit log are not editable here: registry objects
change only through Feast (reviewed change requests), and audit events are append-only.

Every save and delete here writes the same audit event as the API's (`team.created`, `team.updated`,
`team.deleted`, `project.governance_changed`), with the state before and after, by the admin who made it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from catalog.models import Project, Team, TeamAlias
from catalog.services.audit import audit_record


def _state(serializer: Any, obj: Any) -> dict[str, Any]:
    """What the API shows of the object (the audit event's before/after, as the API records them)."""
    return dict(serializer(obj).data)


def _serializers() -> Any:
    from catalog.api.governance import ProjectGovernanceSerializer, TeamSerializer

    return TeamSerializer, ProjectGovernanceSerializer


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

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        team_serializer, _ = _serializers()
        saved = Team.objects.filter(pk=obj.pk).first() if change else None
        request._audit_before = _state(team_serializer, saved) if saved else None  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # members and aliases are saved here
        team_serializer, _ = _serializers()
        audit_record(
            actor=request.user,
            action="team.updated" if change else "team.created",
            obj=form.instance,
            before=getattr(request, "_audit_before", None),
            after=_state(team_serializer, form.instance),
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        team_serializer, _ = _serializers()
        before = _state(team_serializer, obj)
        audit_record(actor=request.user, action="team.deleted", obj=obj, before=before)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for team in queryset:
            self.delete_model(request, team)


@admin.register(Project)
class ProjectGovernanceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Only the governance settings are editable; the rest mirrors the registry."""

    list_display = ["name", "status", "compatibility", "auto_apply", "breaking_approvals"]
    fields = ["name", "status", "registry_key", "repo_key", "compatibility", "auto_apply", "breaking_approvals"]
    readonly_fields = ["name", "status", "registry_key", "repo_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        _, governance_serializer = _serializers()
        before = _state(governance_serializer, Project.objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)
        after = _state(governance_serializer, obj)
        if after != before:
            audit_record(actor=request.user, action="project.governance_changed", obj=obj, before=before, after=after)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
