"""The one parser of instants users type: in the browser, the API, job parameters and the ledger.

An ISO 8601 date-time (with an offset, or naive, read as UTC) or a bare date. A bare date means the start
of that day (UTC) for the bounds of a range (materialization windows), and its end for "as of" questions
(the catalog as it was on that day, the same in the browser and the API).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Literal


class NotAnInstant(ValueError):
    """The text is neither an ISO 8601 date-time nor a date, or is out of range."""


def parse_instant(raw: Any, *, date_means: Literal["start", "end"] = "start") -> datetime:
    """An aware UTC datetime from a datetime or ISO text; NotAnInstant otherwise."""
    if isinstance(raw, datetime):
        parsed = raw
    else:
        text = str(raw).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise NotAnInstant(
                f"{text[:40]!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01T12:00:00Z)"
            ) from None
        if len(text) == 10:  # a bare date: fromisoformat read it as its midnight
            day = date.fromisoformat(text)
            parsed = datetime.combine(day, time.max if date_means == "end" else time.min)
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        raise NotAnInstant("enter a date-time between years 1 and 9999") from None


def parse_time_input(name: str, value: Any, *, date_means: Literal["start", "end"] = "start") -> datetime | None:
    """A time the user gave as input `name` (a job parameter, a form field): None when empty; InvalidInput,
    naming the input, when it is not an instant."""
    from catalog.exceptions import InvalidInput

    if value in (None, ""):
        return None
    try:
        return parse_instant(value, date_means=date_means)
    except NotAnInstant as exc:
        raise InvalidInput(f"{name}: {exc}", {name: ["not an ISO 8601 date or date-time"]}) from None
