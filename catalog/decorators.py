"""View decorators: every catalog page needs a signed-in user holding a portal role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from catalog.exceptions import NotPermitted, ObjectNotFound
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


def domain_errors_as_http(view: View) -> View:
    """Map domain errors to Django's: NotPermitted → 403, ObjectNotFound → 404 (with its message)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotPermitted:
            raise PermissionDenied from None
        except ObjectNotFound as exc:
            raise Http404(str(exc)) from None

    return wrapped
