"""A Feast name as one URL path segment, and back: the one place every URL pattern gets it from.

Feast names are free text. An unnamed `FileSource` is named after its path (`data/driver_stats.parquet`),
and names may hold spaces, dots, `%` or any unicode. Each becomes one segment: `to_url` percent-encodes
everything but unreserved characters (so `/` is `%2F`), Django's `reverse()` encodes that `%` once more, the
server decodes once, and `to_python` decodes the segment back to the exact name. Plain names (letters,
digits, `_`, `-`, `.`) look the same in the URL as in Feast, so hand-written links keep working.

Every `<name:...>` in the URL patterns uses `NameConverter`; code that builds a URL without `reverse()`
(e.g. a text snippet) uses `name_segment`.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from django.urls import register_converter


def name_segment(name: str) -> str:
    """The name as it appears in a URL written by hand (after reverse()'s own encoding)."""
    return quote(quote(name, safe=""), safe="")


class NameConverter:
    """Any Feast name, `/` included, as one path segment. A name with a NUL character is no match (a 404):
    no database column can hold one."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        name = unquote(value)
        if "\x00" in name:
            raise ValueError("NUL in a name")
        return name

    def to_url(self, value: str) -> str:
        return quote(value, safe="")


register_converter(NameConverter, "name")
