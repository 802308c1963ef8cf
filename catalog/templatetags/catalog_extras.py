"""Template filters for catalog pages."""

from __future__ import annotations

from django import template

register = template.Library()

_UNITS = [("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)]


@register.filter
def seconds_human(value: int | None) -> str:
    """604800 → "7 days"; 5400 → "1 hour 30 minutes"; None → "—"."""
    if value is None:
        return "—"
    seconds = int(value)
    if seconds <= 0:
        return "no expiry"
    parts = []
    for name, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
        if len(parts) == 2:
            break
    return " ".join(parts)


@register.filter
def get_item(mapping: dict[str, object] | None, key: str) -> object:
    """`{{ mapping|get_item:key }}`: a dict lookup with a variable key (None when absent)."""
    return (mapping or {}).get(key)


@register.filter
def kind_label(kind: str) -> str:
    """'feature_view' -> 'feature view' (plan and audit pages)."""
    return str(kind).replace("_", " ")
