"""Outgoing notifications: one Slack-compatible JSON webhook (PORTAL_WEBHOOK_URL).

`notify(event, text, fields)` posts ``{"text": ..., "event": ..., "fields": {...}, "attachments": [...]}``
(Slack and Mattermost incoming webhooks read ``text`` and ``attachments``; generic receivers read
``event`` and ``fields``). It never raises into its caller: a webhook that is down or slow must not
fail a materialization or a governance action. Failures are logged. With no URL configured it is
a no-op that returns False.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def webhook_payload(event: str, text: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON body posted for one event (Slack-compatible)."""
    return {
        "text": text,
        "event": event,
        "fields": {k: v for k, v in fields.items()},
        "attachments": [
            {
                "fallback": text,
                "title": event,
                "fields": [{"title": str(k), "value": str(v), "short": len(str(v)) < 40} for k, v in fields.items()],
            }
        ],
    }


def notify(event: str, text: str, fields: dict[str, Any] | None = None) -> bool:
    """Post one event to PORTAL_WEBHOOK_URL; True when delivered. Never raises (failures are logged)."""
    url = getattr(settings, "PORTAL_WEBHOOK_URL", "")
    if not url:
        logger.debug("no PORTAL_WEBHOOK_URL; not sending %s", event)
        return False
    timeout = float(getattr(settings, "PORTAL_WEBHOOK_TIMEOUT_SECONDS", 3.0))
    try:
        body = json.dumps(webhook_payload(event, text, fields or {}), default=str).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "feature-portal"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except (urllib.error.URLError, OSError, ValueError, TypeError) as exc:
        logger.warning("webhook %s for %s failed: %s", _display(url), event, exc)
        return False
    if status >= 300:
        logger.warning("webhook %s for %s answered HTTP %s", _display(url), event, status)
        return False
    return True


def _display(url: str) -> str:
    """The webhook URL without its path (Slack puts the secret in the path)."""
    parts = url.split("/")
    return "/".join(parts[:3]) + "/…" if len(parts) > 3 else url
