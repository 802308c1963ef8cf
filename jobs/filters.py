"""The job runs' filters: one FilterSet for the jobs page and `GET /api/v1/jobs/` (see catalog/filters.py)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as df

from catalog.filters import CreatedWithinFilter
from jobs.models import JobRun


class JobRunFilter(CreatedWithinFilter):
    """Job runs by kind, status, project, who started them, how, and when."""

    kind = df.ChoiceFilter(choices=JobRun.Kind.choices, help_text="The job kind.")
    status = df.ChoiceFilter(choices=JobRun.Status.choices, help_text="The run's state.")
    project = df.CharFilter(method="filter_project", help_text="Runs of this Feast project.")
    started_by = df.CharFilter(field_name="started_by__username", help_text="Username of who started it.")
    trigger = df.CharFilter(help_text="button, api, schedule, apply, auto_apply, ...")

    class Meta:
        model = JobRun
        fields: list[str] = []

    def filter_project(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(params__project=value)
