"""The breaking-change rules as a table: every rule the planner can report, what it means, and its severity
under each compatibility mode. The planner (catalog/services/planning.py) decides which rules a change
triggers; this table alone decides how severe each is, and the README's rules table is generated from it
(`python manage.py breaking_rules`; a test holds the README to it).
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.models.governance import Severity
from catalog.models.projects import Compatibility

SAFE, RISKY, BREAKING = Severity.SAFE, Severity.RISKY, Severity.BREAKING


@dataclass(frozen=True)
class Rule:
    id: str
    change: str  # what a reviewer reads
    backward: Severity  # under BACKWARD, the default mode
    full: Severity | None = None  # under FULL (None: as under BACKWARD)
    none: Severity | None = None  # under NONE (None: breaking becomes risky, the rest as under BACKWARD)

    def under(self, mode: str) -> Severity:
        if mode == Compatibility.FULL and self.full is not None:
            return self.full
        if mode == Compatibility.NONE:
            if self.none is not None:
                return self.none
            return RISKY if self.backward == BREAKING else self.backward
        return self.backward


_RULES = [
    Rule("view.field_removed_in_use", "field removed that a service or on-demand view reads", BREAKING),
    Rule("view.field_removed", "field removed, no registered reader", RISKY, full=BREAKING),
    Rule("view.dtype_changed", "a field's dtype changed", BREAKING),
    Rule("view.dtype_widened", "a field widened (Int32→Int64, Float32→Float64)", RISKY, full=BREAKING),
    Rule("view.entities", "a view's entities changed (every online key changes)", BREAKING, none=BREAKING),
    Rule("view.entity_column", "a view's join key columns changed", BREAKING, none=BREAKING),
    Rule("entity.join_key", "an entity's join key changed", BREAKING, none=BREAKING),
    Rule("entity.value_type", "an entity's value type changed", BREAKING, none=BREAKING),
    Rule("view.ttl_decreased_consumed", "TTL decreased on a view read by a service with registered models", BREAKING),
    Rule("view.ttl_decreased", "TTL decreased (older values become null online)", RISKY),
    Rule(
        "service.vector_consumed",
        "a service with registered models gains, loses, reorders or retypes features",
        BREAKING,
    ),
    Rule("service.vector", "a service without registered models changes its features", RISKY),
    Rule("view.online_off", "online serving turned off while services with models read the view", BREAKING),
    Rule("view.removed_in_use", "view removed while services or on-demand views read it", BREAKING),
    Rule("service.removed_consumed", "service removed while models are registered on it", BREAKING),
    Rule("entity.removed_in_use", "entity removed while views use it", BREAKING),
    Rule("source.removed_in_use", "data source removed while views read it", BREAKING),
    Rule("view.removed", "view removed (no registered reader)", RISKY),
    Rule("service.removed", "service removed (no registered model)", RISKY),
    Rule("entity.removed", "entity removed (unused)", RISKY),
    Rule("source.removed", "data source removed (unused)", RISKY),
    Rule("view.source", "a view's source changed", RISKY),
    Rule("source.changed", "a data source's definition changed", RISKY),
    Rule("view.transformation_added", "a new view with transformation code", RISKY),
    Rule("view.transformation", "transformation code changed (text, name or mode)", RISKY),
    Rule("view.fields_reordered", "a view's fields reordered (services keep their own order)", RISKY),
    Rule("view.online", "online serving turned on, or off with no model reading", RISKY),
    Rule("view.other", "other properties of a view changed", RISKY),
    Rule("metadata.deprecated", "marked deprecated", RISKY),
    Rule("view.field_added", "field added", SAFE),
    Rule("view.ttl_increased", "TTL increased", SAFE),
    Rule("view.added", "new view (no transformation code)", SAFE),
    Rule("service.added", "new service", SAFE),
    Rule("entity.added", "new entity", SAFE),
    Rule("source.added", "new data source", SAFE),
    Rule("metadata.description", "description changed", SAFE),
    Rule("metadata.owner", "owner changed", SAFE),
    Rule("metadata.tags", "tags changed", SAFE),
    Rule("object.documentation", "only documentation changed", SAFE),
    Rule("object.follows_from", "only an embedded copy of another changed object changed", SAFE),
]
RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rules_markdown() -> str:
    """The README's rules table (`python manage.py breaking_rules` prints it)."""
    modes = (Compatibility.BACKWARD, Compatibility.FULL, Compatibility.NONE)
    lines = ["| rule | change | BACKWARD | FULL | NONE |", "|---|---|---|---|---|"]
    for rule in _RULES:
        cells = []
        for mode in modes:
            severity = str(rule.under(mode))
            cells.append(
                f"**{severity}**" if mode != Compatibility.BACKWARD and rule.under(mode) != rule.backward else severity
            )
        lines.append(f"| `{rule.id}` | {rule.change} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"
