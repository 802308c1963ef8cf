"""Password sign-in throttling: guessing a password is locked out per account and per address.

- `PORTAL_LOGIN_MAX_FAILURES` (default 5) failed sign-ins as one username within `PORTAL_LOGIN_LOCKOUT_SECONDS`
  (default 900) lock that username out until the oldest of them is that old; the right password is refused
  meanwhile, with the same message, so a lockout cannot be probed.
- `PORTAL_LOGIN_MAX_FAILURES_PER_ADDRESS` (default 30) failures from one address lock that address out the
  same way (guessing across many usernames).
- The failure that starts a lockout writes an `auth.locked_out` audit event; a successful sign-in clears the
  account's failures. API tokens and single sign-on are not password sign-ins and are not counted.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from catalog.models import LoginFailure
from catalog.services.audit import audit_record


def client_address(request: HttpRequest | None) -> str:
    """The client's address: the first X-Forwarded-For hop behind the TLS proxy (ingress), else the peer's."""
    if request is None:
        return ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if settings.DJANGO_BEHIND_TLS_PROXY else ""
    return (forwarded.split(",")[0].strip() or str(request.META.get("REMOTE_ADDR", "")))[:64]


def _window_start() -> object:
    return timezone.now() - timedelta(seconds=settings.PORTAL_LOGIN_LOCKOUT_SECONDS)


def login_locked_out(*, username: str, address: str) -> bool:
    """Whether sign-ins as `username`, or from `address`, are locked out now."""
    recent = LoginFailure.objects.filter(created_at__gte=_window_start())
    if recent.filter(username=username.lower()).count() >= settings.PORTAL_LOGIN_MAX_FAILURES:
        return True
    return bool(address) and recent.filter(address=address).count() >= settings.PORTAL_LOGIN_MAX_FAILURES_PER_ADDRESS


def login_failed(*, username: str, address: str) -> None:
    """Record a failed sign-in; the one that starts a lockout is audited."""
    username = username.lower()[:150]
    was_locked = login_locked_out(username=username, address=address)
    LoginFailure.objects.create(username=username, address=address)
    LoginFailure.objects.filter(created_at__lt=_window_start()).delete()  # nothing older ever counts
    if not was_locked and login_locked_out(username=username, address=address):
        audit_record(
            actor=None,
            action="auth.locked_out",
            object_type="user",
            object_id=username,
            object_repr=username,
            after={"address": address, "for_seconds": settings.PORTAL_LOGIN_LOCKOUT_SECONDS},
        )


def login_succeeded(*, username: str) -> None:
    LoginFailure.objects.filter(username=username.lower()).delete()
