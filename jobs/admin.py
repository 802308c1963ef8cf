"""Read-only admin for the job ledger (runs change only through services and workers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import FreshnessAlert, JobRun, MaterializationRecord, ViewLock


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JobRun)
class JobRunAdmin(_ReadOnly):
    list_display = ("id", "kind", "status", "trigger", "started_by", "created_at", "finished_at")
    list_filter = ("kind", "status", "trigger")


@admin.register(MaterializationRecord)
class MaterializationRecordAdmin(_ReadOnly):
    list_display = ("id", "project", "view", "status", "start", "end", "rows_written", "duration_seconds")
    list_filter = ("status", "project")
    search_fields = ("view",)


@admin.register(ViewLock)
class ViewLockAdmin(_ReadOnly):
    list_display = ("project", "view", "job_run", "locked_until")


@admin.register(FreshnessAlert)
class FreshnessAlertAdmin(_ReadOnly):
    list_display = ("project", "view", "state", "changed_at", "notified_at")
