"""Field-level differences between two object specs (registry JSON), readable by a reviewer.

Lists of named items (features, entity columns, projections) are compared by name, so a removed
field reads as "features.tenure removed", not "features changed".
"""

from __future__ import annotations

from typing import Any

# Keys of lists whose items are matched by a name key.
_NAMED_LISTS = {
    "features": "name",
    "entity_columns": "name",
    "feature_columns": "name",
    "schema": "name",
}
_NAME_KEYS = ("name", "feature_view_name")


def _named(items: list[Any]) -> dict[str, Any] | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _NAME_KEYS:
        if all(key in i for i in items):
            names = [str(i[key]) for i in items]
            if len(set(names)) == len(names):
                alias_key = "feature_view_name_alias"
                return {(str(i.get(alias_key)) if i.get(alias_key) else str(i[key])): i for i in items}
    return None


def diff_specs(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """A list of {"path", "change": added|removed|changed|reordered, "before", "after"}."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                out.append({"path": sub, "change": "added", "before": None, "after": after[key]})
            elif key not in after:
                out.append({"path": sub, "change": "removed", "before": before[key], "after": None})
            else:
                out.extend(diff_specs(before[key], after[key], sub))
        return out
    if isinstance(before, list) and isinstance(after, list):
        old, new = _named(before), _named(after)
        if old is not None and new is not None:
            out = []
            for name in list(old) + [n for n in new if n not in old]:
                sub = f"{path}[{name}]"
                if name not in new:
                    out.append({"path": sub, "change": "removed", "before": old[name], "after": None})
                elif name not in old:
                    out.append({"path": sub, "change": "added", "before": None, "after": new[name]})
                else:
                    out.extend(diff_specs(old[name], new[name], sub))
            common_old = [n for n in old if n in new]
            common_new = [n for n in new if n in old]
            if common_old != common_new:
                out.append({"path": path, "change": "reordered", "before": common_old, "after": common_new})
            return out
    return [{"path": path, "change": "changed", "before": before, "after": after}]


# Where a view's spec (registry JSON) keeps its transformation's source text: the current field, then the legacy one.
_UDF_SOURCE_PATHS = (
    ("feature_transformation", "user_defined_function", "body_text"),
    ("user_defined_function", "body_text"),
)


def udf_source(spec: dict[str, Any] | None) -> str:
    """The transformation source text of a view's spec JSON ("" when it has none): what Feast runs."""
    for path in _UDF_SOURCE_PATHS:
        node: Any = spec or {}
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return ""


def source_diff(before: str, after: str, *, before_label: str = "before", after_label: str = "after") -> str:
    """A unified diff of two source texts, complete (every changed line), "" when they are equal."""
    import difflib

    if before == after:
        return ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), before_label, after_label, n=3
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
