"""View decorators: every catalog page needs a signed-in user holding a portal role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from catalog.permissions import can_view_catalog

View = Callable[..., HttpResponse]


def reader_required(view: View) -> View:
    """Anonymous users go to login; signed-in users without any portal role get a 403 that says why."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_view_catalog(request.user):
            raise PermissionDenied("Your account has no portal role yet; ask an admin for the viewer role.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)
