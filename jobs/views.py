"""HTML views that start or show background jobs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from catalog.permissions import can_operate
from jobs.services import registry_sync_start


@login_required
@require_POST
def sync_now(request: HttpRequest) -> HttpResponse:
    """Queue a registry sync (operators)."""
    if not can_operate(request.user):
        raise PermissionDenied
    run = registry_sync_start(actor=request.user, trigger="button", force=True)
    messages.success(request, f"Registry sync queued (job #{run.pk}).")
    return redirect("catalog:home")
