"""Throttling per API token (per user for sessions, per address for anonymous requests).

The counters live in the cache (Redis in production). When the cache cannot be reached the limiter fails
open: the request is served, and a warning is logged (at most once a minute per process), so an outage of
Redis never turns every API request into an error.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from catalog.models import ApiToken

logger = logging.getLogger(__name__)
_last_warning = 0.0


class PortalRateThrottle(SimpleRateThrottle):
    """Rates from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]: `token`, `user` and `anon`."""

    scope = "user"

    def __init__(self) -> None:
        # Read the rates per request, so settings changes (and tests) take effect.
        self.THROTTLE_RATES = dict(api_settings.DEFAULT_THROTTLE_RATES)  # type: ignore[arg-type]
        super().__init__()

    def allow_request(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiToken):
            self.scope = "token"
        elif request.user and request.user.is_authenticated:
            self.scope = "user"
        else:
            self.scope = "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:  # the cache backend's connection errors
            global _last_warning
            if time.monotonic() - _last_warning > 60:
                _last_warning = time.monotonic()
                logger.warning("API rate limiting is off: the cache is unreachable (%s: %s)", type(exc).__name__, exc)
            return True

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"t{request.auth.prefix}"  # random per token: never shared, even across databases
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = f"a{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
