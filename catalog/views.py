"""HTML views: parse input, call a selector or service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import selectors
from catalog.permissions import can_operate


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Dashboard: counts, recent registry changes, recent syncs."""
    context = {
        "counts": selectors.dashboard_counts(user=request.user),
        "changes": selectors.recent_changes(user=request.user),
        "syncs": selectors.sync_run_list(user=request.user, limit=5),
        "can_operate": can_operate(request.user),
    }
    return render(request, "catalog/home.html", context)
