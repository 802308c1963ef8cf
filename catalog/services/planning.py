"""Planning a change request: the proposal (protos), its field-level diff, its classification and impact.

A plan is computed against the live registry, for the objects the request touches plus the objects that
depend on them (from the catalog's lineage) and those they reference. Its `scope` is that set of keys and
`base_fingerprint` the content digest of the scope: the worker compares it again before applying.

Classification follows Feast's semantics (see README "Breaking-change rules"): every item gets a
severity, a rule id and a sentence a reviewer can read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from catalog import feast_gateway as gateway
from catalog.contracts import contract_hash
from catalog.diff import diff_specs, source_diff
from catalog.exceptions import InvalidInput, NothingToChange, SourceUnreadable
from catalog.models import (
    SEVERITY_ORDER,
    CatalogObject,
    Compatibility,
    LineageEdge,
    ModelConsumer,
    Project,
    Severity,
    Status,
)
from catalog.services.rules import RULES
from catalog.services.teams import TeamDirectory

Key = tuple[str, str]
ObjectProto = gateway.ObjectProto

# Widening conversions a BACKWARD reader survives (old values fit the new type).
WIDENING = {("Int32", "Int64"), ("Float32", "Float64"), ("Int32", "Float64")}
_KIND_LABEL = {
    "entity": "entity",
    "data_source": "data source",
    "feature_view": "feature view",
    "feature_service": "feature service",
}


@dataclass
class Proposal:
    """What a change request would write: objects to upsert and (explicitly) to delete."""

    upserts: dict[Key, ObjectProto] = field(default_factory=dict)
    deletes: dict[Key, ObjectProto] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def keys(self) -> set[Key]:
        return set(self.upserts) | set(self.deletes)

    def to_json(self) -> dict[str, Any]:
        def enc(obj: ObjectProto) -> dict[str, str]:
            return {
                "kind": obj.kind,
                "proto_type": obj.proto_type,
                "name": obj.name,
                "proto": base64.b64encode(obj.proto).decode(),
                "content_hash": gateway.content_hash(obj),
            }

        return {
            "upserts": [enc(o) for _, o in sorted(self.upserts.items())],
            "deletes": [enc(o) for _, o in sorted(self.deletes.items())],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proposal:
        def dec(item: Mapping[str, Any]) -> ObjectProto:
            return ObjectProto(
                kind=str(item["kind"]),
                proto_type=str(item["proto_type"]),
                name=str(item["name"]),
                proto=base64.b64decode(item["proto"]),
            )

        upserts = [dec(i) for i in data.get("upserts", [])]
        deletes = [dec(i) for i in data.get("deletes", [])]
        return cls(
            upserts={o.key: o for o in upserts},
            deletes={o.key: o for o in deletes},
            warnings=list(data.get("warnings", [])),
        )


@dataclass
class Plan:
    """A computed plan, ready to be stored on a change request."""

    proposal: Proposal
    diff: dict[str, Any]
    severity: str
    base_fingerprint: str
    required_approvals: int
    required_teams: list[dict[str, Any]]


# --- Building proposals -------------------------------------------------------------------------------------


def _edit_keys(edits: Sequence[Mapping[str, Any]]) -> set[Key]:
    keys: set[Key] = set()
    for edit in edits if isinstance(edits, list | tuple) else []:
        if not isinstance(edit, Mapping):
            continue
        if isinstance(edit.get("kind"), str) and isinstance(edit.get("name"), str):
            keys.add((edit["kind"], edit["name"]))
        if isinstance(edit.get("view"), str):
            keys.add(("feature_view", edit["view"]))
        if isinstance(edit.get("service"), str):
            keys.add(("feature_service", edit["service"]))
    return keys


def proposal_from_edits(repo: gateway.RepoRef, project: Project, edits: Sequence[Mapping[str, Any]]) -> Proposal:
    """Build the proposed protos from the live registry's current protos and the edits (no code involved)."""
    services = CatalogObject.objects.filter(
        project=project, kind=CatalogObject.Kind.FEATURE_SERVICE, status__in=[Status.ACTIVE, Status.DEPRECATED]
    ).values_list("name", flat=True)
    keys = _edit_keys(edits) | {("feature_service", name) for name in services}
    edited, deleted = gateway.apply_edits(gateway.project_protos(repo, project.name, keys), edits)
    proposal = _as_feast_stores(repo, project, edited.values(), deleted)
    if not proposal.keys:
        raise NothingToChange("the edits change nothing")
    return proposal


def _as_feast_stores(
    repo: gateway.RepoRef, project: Project, upserts: Iterable[ObjectProto], deleted: Iterable[Key]
) -> Proposal:
    """What apply would write, exactly: Feast's apply run on a scratch copy of the project (inference,
    defaults, the data sources a view carries), compared with the live registry object by object."""
    deleted = set(deleted)
    deletes = gateway.project_protos(repo, project.name, deleted) if deleted else {}
    after = gateway.as_feast_stores(repo, project.name, list(upserts), list(deletes.values()))
    current = gateway.project_protos(repo, project.name, after.keys())
    changed = {
        k: o
        for k, o in after.items()
        if k not in current or gateway.content_hash(current[k]) != gateway.content_hash(o)
    }
    return Proposal(upserts=changed, deletes=deletes)


def proposal_from_objects(
    repo: gateway.RepoRef, project: Project, objects: Iterable[ObjectProto], *, mode: str
) -> Proposal:
    """Proposal for an uploaded repo: changed or new objects; with mode "full", deletions of the omitted ones."""
    proposed = {o.key: o for o in objects}
    omitted = set(gateway.project_protos(repo, project.name)) - set(proposed) if mode == "full" else set()
    proposal = _as_feast_stores(repo, project, proposed.values(), omitted)
    if not proposal.keys:
        raise NothingToChange(
            "the upload matches the registry: nothing would change"
            + ("" if mode == "full" else " (a partial upload never deletes; choose 'whole project' to delete)")
        )
    return proposal


# --- Planning -------------------------------------------------------------------------------------------


@dataclass
class _State:
    """Objects before and after, for the plan's scope."""

    before: dict[Key, ObjectProto]
    after: dict[Key, ObjectProto]
    info_before: dict[Key, Any] = field(default_factory=dict)
    info_after: dict[Key, Any] = field(default_factory=dict)

    def info(self, key: Key, which: str) -> Any:
        cache, source = (self.info_before, self.before) if which == "before" else (self.info_after, self.after)
        if key not in cache:
            obj = source.get(key)
            cache[key] = gateway.object_info(obj, "") if obj is not None else None
        return cache[key]


def _dependents(project: Project, keys: Iterable[Key]) -> set[Key]:
    """Catalog objects downstream of `keys` (services and on-demand views of a view, views of an entity...)."""
    ids = {
        (o.kind, o.name): o.pk
        for o in CatalogObject.objects.filter(project=project, name__in={n for _, n in keys}).only("kind", "name")
    }
    wanted = [ids[k] for k in keys if k in ids]
    if not wanted:
        return set()
    rows = LineageEdge.objects.filter(upstream_id__in=wanted).values_list(
        "downstream__kind", "downstream__name", "downstream__status"
    )
    return {(kind, name) for kind, name, status in rows if status != Status.REMOVED}


def plan_proposal(repo: gateway.RepoRef, project: Project, proposal: Proposal) -> Plan:
    """Plan a proposal against the live registry: validate references, diff, classify, find impact."""
    touched = proposal.keys
    scope = set(touched) | _dependents(project, touched)
    for obj in proposal.upserts.values():
        scope |= {ref for ref, _ in gateway.references(obj)}
    before = gateway.project_protos(repo, project.name, scope)
    # Objects a dependent references must be read too, to check the end state is consistent.
    extra = {ref for key in scope - touched if key in before for ref, _ in gateway.references(before[key])}
    if extra - scope:
        before.update(gateway.project_protos(repo, project.name, extra - scope))
        scope |= extra
    after = {k: v for k, v in before.items() if k not in proposal.deletes}
    after.update(proposal.upserts)
    state = _State(before=before, after=after)
    _check_references(state, touched)
    proposal.warnings = [*proposal.warnings, *_check_against_sources(repo, project.name, state, proposal)]
    diff = _diff(project, state, proposal)
    # Each scope object's content as planned: if the request goes stale, the worker names what moved.
    diff["scope_hashes"] = {
        f"{kind}:{name}": gateway.content_hash(before[(kind, name)]) if (kind, name) in before else "absent"
        for kind, name in sorted(scope)
    }
    # Exactly the keys base_fingerprint covers, absent ones included (a dependent the catalog knows but the
    # registry read does not return, e.g. a label view): the worker recomputes the fingerprint over these.
    diff["scope"] = sorted([list(k) for k in scope])
    severity = max((i["severity"] for i in diff["objects"]), key=lambda s: SEVERITY_ORDER[Severity(s)])
    breaking_needed = project.breaking_approvals or settings.GOVERNANCE_BREAKING_APPROVALS
    required = breaking_needed if severity == Severity.BREAKING else 1
    return Plan(
        proposal=proposal,
        diff=diff,
        severity=severity,
        base_fingerprint=gateway.scope_fingerprint(before, scope),
        required_approvals=required,
        required_teams=_required_teams(project, state, diff),
    )


def current_fingerprint(repo: gateway.RepoRef, project: str, scope: Iterable[Key]) -> str:
    """The scope's content digest now (compared with the plan's base_fingerprint before applying)."""
    keys = set(scope)
    return gateway.scope_fingerprint(gateway.project_protos(repo, project, keys), keys)


def _check_references(state: _State, touched: set[Key]) -> None:
    """The end state must be consistent: everything a touched or dependent object reads must exist."""
    problems: list[str] = []
    for key, obj in sorted(state.after.items()):
        for (ref_kind, ref_name), features in gateway.references(obj):
            target = state.after.get((ref_kind, ref_name))
            label = f"{_KIND_LABEL[key[0]]} '{key[1]}'"
            if target is None:
                if (ref_kind, ref_name) in state.before:
                    problems.append(f"{label} uses {_KIND_LABEL[ref_kind]} '{ref_name}', which this change deletes")
                elif key in touched:
                    problems.append(
                        f"{label} references {_KIND_LABEL[ref_kind]} '{ref_name}', which neither this change "
                        "nor the registry has"
                    )
                continue
            if features:
                missing = [f for f in features if f not in gateway.view_field_names(target)]
                if missing:
                    problems.append(
                        f"{label} reads {', '.join(repr(m) for m in missing)} from '{ref_name}', which has no such "
                        "field after this change"
                    )
    if problems:
        raise InvalidInput(
            "the change leaves the registry inconsistent: " + "; ".join(problems[:10]), {"references": problems}
        )


_NUMBERS = ("Int32", "Int64", "Float32", "Float64")
_COMPLEX = ("Map", "Json", "Struct", "?")


def _type_fit(field: str, column: str) -> str:
    """How a column of type `column` materializes as a field of type `field`: "ok", "lossy" (Feast converts
    but loses information: a float truncated to an integer, a wider number narrowed) or "no" (Feast cannot
    convert it). Map/Json/Struct and types Feast does not map are not judged here."""
    if field == column or any(
        t.startswith(_COMPLEX) or t.endswith(("(Map)", "(Json)", "(Struct)")) for t in (field, column)
    ):
        return "ok"
    lists = [t.startswith(("Array(", "Set(")) for t in (field, column)]
    if all(lists):
        return _type_fit(field[field.index("(") + 1 : -1], column[column.index("(") + 1 : -1])
    if any(lists):
        return "no"
    if field in _NUMBERS and column in _NUMBERS:
        return (
            "ok"
            if _NUMBERS.index(column) <= _NUMBERS.index(field)
            and not (column.startswith("Float") and field.startswith("Int"))
            else "lossy"
        )
    if field == "String" and column in (*_NUMBERS, "Bool"):
        return "ok"
    return "no"


def _check_against_sources(repo: gateway.RepoRef, project: str, state: _State, proposal: Proposal) -> list[str]:
    """Every added or retyped field of a batch or stream view must be a column of its batch source, of a type
    Feast can materialize as the field's (read from the source itself). Problems make the plan invalid, one
    message each; a source the portal cannot read is a warning on the plan, never a silent pass."""
    problems: list[str] = []
    warnings: list[str] = []
    for key, obj in sorted(proposal.upserts.items()):
        new = state.info(key, "after")
        if key[0] != "feature_view" or new.kind not in {"batch", "stream"} or not new.batch_source:
            continue
        old = state.info(key, "before")
        known = {} if old is None or old.batch_source != new.batch_source else {f.name: f.dtype for f in old.features}
        checked = [f for f in new.features if known.get(f.name) != f.dtype]
        if not checked:
            continue
        try:
            columns = gateway.source_columns(repo, project, obj.message().spec.batch_source)
        except SourceUnreadable as exc:
            warnings.append(
                f"the fields of view '{key[1]}' were not checked against data source '{new.batch_source}': {exc}"
            )
            continue
        listing = ", ".join(f"{c} {t}" for c, t in columns.items())
        for f in checked:
            fit = _type_fit(f.dtype, columns[f.name]) if f.name in columns else "missing"
            column = f"column '{f.name}' of data source '{new.batch_source}' is {columns.get(f.name)}"
            if fit == "missing":
                problems.append(
                    f"view '{key[1]}': field '{f.name}' is not a column of data source '{new.batch_source}' "
                    f"(its columns: {listing})"
                )
            elif fit == "no":
                problems.append(f"view '{key[1]}': field '{f.name}' is {f.dtype}, but {column}")
            elif fit == "lossy":
                warnings.append(
                    f"view '{key[1]}': field '{f.name}' is {f.dtype}, but {column}: Feast converts the values and "
                    "loses information"
                )
    if problems:
        raise InvalidInput(
            "the change does not match the source data: " + "; ".join(problems[:10]), {"fields": problems}
        )
    return warnings


# --- The field-level diff and its classification ------------------------------------------------------------


def _item(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    """One classified change: its severity is the rules table's (catalog/services/rules.py), under BACKWARD
    here; `_under_mode` moves it to the project's mode."""
    return {"severity": RULES[rule].backward, "rule": rule, "message": message, **extra}


def _under_mode(items: list[dict[str, Any]], mode: str) -> None:
    """Each item's severity under the project's compatibility mode, from the rules table (said when it moved)."""
    for item in items:
        severity = RULES[item["rule"]].under(mode)
        if severity != item["severity"]:
            item["message"] += f" (compatibility {mode}: {severity}, not {item['severity']})"
            item["severity"] = severity


def _consumers(project: Project, services: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    rows = ModelConsumer.objects.filter(service__project=project, service__name__in=list(services)).select_related(
        "service", "team"
    )
    for consumer in rows:
        out.setdefault(consumer.service.name, []).append(
            {
                "id": consumer.pk,
                "name": consumer.name,
                "version": consumer.version,
                "owner": consumer.owner,
                "team": consumer.team.name if consumer.team else "",
                "contract_hash": consumer.contract_hash,
            }
        )
    return out


def _services_using(state: _State, view: str, which: str = "before") -> dict[str, list[str]]:
    """Services (and on-demand views) reading `view` in the given state, with the fields they read."""
    source = state.before if which == "before" else state.after
    out: dict[str, list[str]] = {}
    for key, obj in source.items():
        if key[0] not in {"feature_service", "feature_view"}:
            continue
        for (ref_kind, ref_name), features in gateway.references(obj):
            if ref_kind == "feature_view" and ref_name == view and key[1] != view:
                out.setdefault(f"{key[0]}:{key[1]}", []).extend(features)
    return out


def _vector(info: Any) -> list[dict[str, Any]]:
    return [
        {"index": e.index, "view": e.feature_view, "alias": e.view_alias, "feature": e.feature, "dtype": e.dtype}
        for e in info.vector
    ]


def _diff(project: Project, state: _State, proposal: Proposal) -> dict[str, Any]:
    mode = Compatibility(project.compatibility)
    service_names = {k[1] for k in [*state.before, *state.after] if k[0] == "feature_service"}
    consumers = _consumers(project, service_names)
    objects: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    infra: list[str] = []
    for key in sorted(proposal.keys, key=lambda k: (list(_KIND_LABEL).index(k[0]), k[1])):
        kind, name = key
        old, new = state.info(key, "before"), state.info(key, "after")
        action = "added" if old is None else "removed" if new is None else "changed"
        current = state.before.get(key)
        proposed = state.after.get(key)
        changes = diff_specs(
            gateway.spec_json(current) if current else {}, gateway.spec_json(proposed) if proposed else {}
        )[:200]
        follows = _follows_from(key, current, proposed, proposal.keys)
        items: list[dict[str, Any]] = []
        if follows:
            items = [
                _item(
                    "object.follows_from",
                    f"follows from {', '.join(follows)}: only its embedded copy changed",
                )
            ]
        elif kind == "feature_view":
            items = _classify_view(state, name, old, new, consumers, mode)
            if action != "changed" and (old or new).online:
                infra.append(f"online store table for {name} {'created' if action == 'added' else 'deleted'}")
        elif kind == "feature_service":
            items, vector = _classify_service(name, old, new, consumers, mode)
            services.append(vector)
        elif kind == "entity":
            items = _classify_entity(state, name, old, new)
        else:
            items = _classify_source(state, name, old, new)
        _under_mode(items, mode)
        if not items:
            paths = ", ".join(c["path"] for c in changes[:10])
            items = [_item("object.documentation", f"documentation changed: {paths}")]
        objects.append(
            {
                "kind": kind,
                "name": name,
                "subkind": getattr(new or old, "kind", "") if kind in {"feature_view", "data_source"} else "",
                "action": action,
                "severity": max((i["severity"] for i in items), key=lambda s: SEVERITY_ORDER[Severity(s)]),
                "items": items,
                "changes": changes,
                "follows_from": follows,
                "feast_plan": gateway.feast_plan(current, proposed),
                "owner": (new or old).owner,
                "content_hash": gateway.content_hash(proposed) if proposed else "",
                "transformation": _transformation(old, new) if kind == "feature_view" else None,
            }
        )
    affected = _affected_services(state, proposal, objects)
    for svc in affected:
        if not any(s["name"] == svc for s in services):
            info = state.info(("feature_service", svc), "after")
            if info is not None:
                unchanged = _vector(info)
                services.append(
                    {"name": svc, "before": unchanged, "after": unchanged, "changed": False, "reads_changed": True}
                )
    for entry in services:
        entry["consumers"] = consumers.get(entry["name"], [])
    models = [
        m | {"service": s} for s in sorted(affected | {x["name"] for x in services}) for m in consumers.get(s, [])
    ]
    counts = {s.value: sum(1 for o in objects if o["severity"] == s) for s in Severity}
    return {
        "compatibility": mode.value,
        "objects": objects,
        "services": sorted(services, key=lambda s: s["name"]),
        "infra": infra,
        "impact": {
            "services": sorted(affected | {s["name"] for s in services}),
            "models": models,
            "owners": sorted({o["owner"] for o in objects if o["owner"]} | {m["owner"] for m in models if m["owner"]}),
        },
        "summary": {
            "added": sum(1 for o in objects if o["action"] == "added"),
            # Objects that change only because they carry a copy of a changed one are not changes of their own.
            "changed": sum(1 for o in objects if o["action"] == "changed" and not _only_follows(o)),
            "follows": sum(1 for o in objects if o["action"] == "changed" and _only_follows(o)),
            "removed": sum(1 for o in objects if o["action"] == "removed"),
            **counts,
        },
        "scope": sorted([list(k) for k in {*state.before, *state.after}]),
        "warnings": list(proposal.warnings),
    }


def _only_follows(obj: Mapping[str, Any]) -> bool:
    """The object's only change is to the copies it carries of other changed objects."""
    return bool(obj["items"]) and all(i["rule"] == "object.follows_from" for i in obj["items"])


def _follows_from(key: Key, current: ObjectProto | None, proposed: ObjectProto | None, planned: set[Key]) -> list[str]:
    """For an object whose own content is unchanged (only its embedded copy of a source, view or feature
    changed): the planned objects it embeds, as "kind:name" (empty when it changed in its own right)."""
    if current is None or proposed is None or gateway.own_hash(current) != gateway.own_hash(proposed):
        return []
    embedded = {ref for ref, _ in gateway.references(proposed)}
    info = gateway.object_info(proposed, "")
    for source in (getattr(info, "batch_source", ""), getattr(info, "stream_source", "")):
        if source:
            embedded.add(("data_source", source))
    upstream = sorted(f"{k}:{n}" for k, n in embedded & planned if (k, n) != key)
    return upstream or sorted(f"{k}:{n}" for k, n in embedded)


def _affected_services(state: _State, proposal: Proposal, objects: list[dict[str, Any]]) -> set[str]:
    """Services whose models see a change: touched services, and services reading a changed field of a
    changed view (or any field, when the change is view-wide: entities, TTL, source, removal)."""
    out: set[str] = {name for kind, name in proposal.keys if kind == "feature_service"}
    for obj in objects:
        if obj["kind"] != "feature_view":
            continue
        relevant = [i for i in obj["items"] if i["severity"] != Severity.SAFE and not i["rule"].startswith("metadata.")]
        if not relevant:
            continue
        fields = {i["field"] for i in relevant if "field" in i}
        view_wide = any("field" not in i for i in relevant)
        for which in ("before", "after"):
            for ref, read in _services_using(state, obj["name"], which).items():
                ref_kind, ref_name = ref.split(":", 1)
                if ref_kind == "feature_service" and (view_wide or not read or fields & set(read)):
                    out.add(ref_name)
    return out


# Spec properties that change what a view's transformation runs or how: any change is at least risky.
TRANSFORMATION_PROPERTIES = frozenset({"feature_transformation", "user_defined_function", "mode"})


def _transformation(old: Any, new: Any) -> dict[str, str] | None:
    """A view's transformation source before and after, with the complete diff (None for views without one)."""
    before = getattr(old, "udf_source", "") or ""
    after = getattr(new, "udf_source", "") or ""
    if not before and not after:
        return None
    return {
        "before": before,
        "after": after,
        "diff": source_diff(before, after, before_label="registry", after_label="proposed"),
    }


def _classify_view(
    state: _State,
    name: str,
    old: Any,
    new: Any,
    consumers: Mapping[str, list[dict[str, Any]]],
    mode: Compatibility,
) -> list[dict[str, Any]]:
    users = _services_using(state, name, "before")
    consumed = sorted(
        u.split(":", 1)[1] for u in users if u.startswith("feature_service:") and consumers.get(u.split(":", 1)[1])
    )
    if old is None:
        if new.udf_source:
            # Code that Feast will run: never "safe", whoever proposes it (a reviewer reads the source on the page).
            text = f"new {new.kind} feature view with {len(new.features)} fields and transformation code"
            return [_item("view.transformation_added", text)]
        return [_item("view.added", f"new {new.kind} feature view with {len(new.features)} fields")]
    if new is None:
        if users:
            return [_item("view.removed_in_use", f"view removed while {', '.join(sorted(users))} read it")]
        return [_item("view.removed", "view removed (no registered service reads it; offline users may)")]
    items: list[dict[str, Any]] = []
    before = {f.name: f for f in old.features}
    after = {f.name: f for f in new.features}
    for field_name, old_field in before.items():
        readers = sorted(u for u, fields in users.items() if field_name in fields or not fields)
        if field_name not in after:
            if readers:
                items.append(
                    _item(
                        "view.field_removed_in_use",
                        f"field {field_name} removed; {', '.join(readers)} read it",
                        field=field_name,
                    )
                )
            else:
                items.append(
                    _item(
                        "view.field_removed",
                        f"field {field_name} removed (no registered reader)",
                        field=field_name,
                    )
                )
        elif old_field.dtype != after[field_name].dtype:
            old_t, new_t = old_field.dtype, after[field_name].dtype
            widening = (old_t, new_t) in WIDENING
            if widening:  # risky under BACKWARD, breaking under FULL (the rules table)
                items.append(
                    _item(
                        "view.dtype_widened",
                        f"field {field_name}: {old_t} → {new_t} (widening: old values still fit)",
                        field=field_name,
                        before=old_t,
                        after=new_t,
                    )
                )
            else:
                items.append(
                    _item(
                        "view.dtype_changed",
                        f"field {field_name}: {old_t} → {new_t}"
                        + (f"; read by {', '.join(readers)}" if readers else ""),
                        field=field_name,
                        before=old_t,
                        after=new_t,
                    )
                )
    for field_name, new_field in after.items():
        if field_name not in before:
            items.append(
                _item(
                    "view.field_added",
                    f"field {field_name} ({new_field.dtype}) added",
                    field=field_name,
                    after=new_field.dtype,
                )
            )
    common_old = [n for n in before if n in after]
    common_new = [n for n in after if n in before]
    if common_old != common_new:
        items.append(_item("view.fields_reordered", "fields reordered (services keep their own order)"))
    if sorted(old.entities) != sorted(new.entities):
        items.append(
            _item(
                "view.entities",
                f"entities {', '.join(old.entities) or '—'} → {', '.join(new.entities) or '—'}: every online key changes",
            )
        )
    old_cols = {c.name: c.dtype for c in old.entity_columns}
    new_cols = {c.name: c.dtype for c in new.entity_columns}
    if old_cols != new_cols and sorted(old.entities) == sorted(new.entities):
        items.append(_item("view.entity_column", f"join key columns {old_cols} → {new_cols}: online keys change"))
    if (old.ttl_seconds or 0) != (new.ttl_seconds or 0):
        old_ttl, new_ttl = old.ttl_seconds or 0, new.ttl_seconds or 0
        text = f"TTL {_duration(old_ttl)} → {_duration(new_ttl)}"
        decreased = new_ttl != 0 and (old_ttl == 0 or new_ttl < old_ttl)
        if decreased and consumed:
            items.append(
                _item(
                    "view.ttl_decreased_consumed",
                    f"{text}: models of {', '.join(consumed)} get more nulls",
                )
            )
        elif decreased:
            items.append(_item("view.ttl_decreased", f"{text}: older values become null online"))
        else:
            items.append(_item("view.ttl_increased", text))
    if (
        old.batch_source != new.batch_source
        or old.stream_source != new.stream_source
        or _source_spec(state, name, "before") != _source_spec(state, name, "after")
    ):
        items.append(_item("view.source", "source changed: values may differ from training data"))
    if old.online != new.online:
        if not new.online and consumed:
            items.append(
                _item(
                    "view.online_off",
                    f"online serving turned off; {', '.join(consumed)} have models",
                )
            )
        else:
            items.append(_item("view.online", f"online {old.online} → {new.online}"))
    changed_paths = {c["path"].split(".")[0].split("[")[0] for c in diff_specs(old.spec, new.spec)}
    if old.udf_source != new.udf_source or changed_paths & TRANSFORMATION_PROPERTIES:
        items.append(_item("view.transformation", "transformation code changed"))
    items += _metadata_items(old, new)
    covered = {
        "features",
        "entities",
        "entity_columns",
        "ttl",
        "batch_source",
        "stream_source",
        "online",
        "description",
        "owner",
        "tags",
        *TRANSFORMATION_PROPERTIES,
        "name",
        "project",
    }
    other = sorted(changed_paths - covered)
    if other:
        items.append(_item("view.other", f"other properties changed: {', '.join(other)}"))
    return items


def _source_spec(state: _State, name: str, which: str) -> Any:
    info = state.info(("feature_view", name), which)
    if info is None:
        return None
    spec = info.spec
    return (spec.get("batch_source"), spec.get("stream_source"))


def _duration(seconds: int) -> str:
    if not seconds:
        return "none"
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def _metadata_items(old: Any, new: Any) -> list[dict[str, Any]]:
    items = []
    if old.description != new.description:
        items.append(_item("metadata.description", "description changed"))
    if old.owner != new.owner:
        items.append(_item("metadata.owner", f"owner {old.owner or '—'} → {new.owner or '—'}"))
    if old.tags != new.tags:
        deprecated = new.tags.get("deprecated", "").lower() in {"true", "1", "yes"} and old.tags.get(
            "deprecated"
        ) != new.tags.get("deprecated")
        if deprecated:
            items.append(_item("metadata.deprecated", "marked deprecated: consumers should migrate"))
        changed = sorted(k for k in set(old.tags) | set(new.tags) if old.tags.get(k) != new.tags.get(k))
        items.append(_item("metadata.tags", f"tags changed: {', '.join(changed)}"))
    return items


def _classify_service(
    name: str, old: Any, new: Any, consumers: Mapping[str, list[dict[str, Any]]], mode: Compatibility
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    models = consumers.get(name, [])
    before = _vector(old) if old else []
    after = _vector(new) if new else []
    vector = {"name": name, "before": before, "after": after, "changed": before != after, "reads_changed": False}
    if old is None:
        return [_item("service.added", f"new service with {len(after)} features")], vector
    if new is None:
        if models:
            return [
                _item(
                    "service.removed_consumed",
                    f"service removed; {len(models)} registered models use it",
                )
            ], vector
        return [_item("service.removed", "service removed (no registered model)")], vector
    items: list[dict[str, Any]] = []
    if before != after:
        refs_before = [f"{e['alias'] or e['view']}:{e['feature']}" for e in before]
        refs_after = [f"{e['alias'] or e['view']}:{e['feature']}" for e in after]
        parts = []
        if lost := [r for r in refs_before if r not in refs_after]:
            parts.append(f"loses {', '.join(lost)}")
        if gained := [r for r in refs_after if r not in refs_before]:
            parts.append(f"gains {', '.join(gained)}")
        common_before = [r for r in refs_before if r in refs_after]
        common_after = [r for r in refs_after if r in refs_before]
        if common_before != common_after:
            parts.append("reorders its features")
        retyped = [
            f"{r} {b['dtype']} → {a['dtype']}"
            for r, b in zip(refs_before, before, strict=True)
            for r2, a in zip(refs_after, after, strict=True)
            if r == r2 and a["dtype"] != b["dtype"]
        ]
        if retyped:
            parts.append(f"retypes {', '.join(retyped)}")
        if parts and not lost and not gained and common_before == common_after:
            pass
        text = "vector " + "; ".join(parts or ["changes"])
        if models:
            # The contract (catalog/contracts.py) of the proposed vector: pinned models stop matching it.
            new_hash = contract_hash([(e["view"], e["alias"], e["feature"], e["dtype"]) for e in after])
            broken = [
                f"{m['name']}@{m['version']}" for m in models if m["contract_hash"] and m["contract_hash"] != new_hash
            ]
            vector["contract_hash_after"] = new_hash
            text += f": the model reads positions ({len(models)} registered models"
            text += f"; pinned contracts that stop matching: {', '.join(broken)})" if broken else ")"
            items.append(_item("service.vector_consumed", text))
        else:
            items.append(_item("service.vector", text + " (no registered model yet)"))
    items += _metadata_items(old, new)
    return items, vector


def _classify_entity(state: _State, name: str, old: Any, new: Any) -> list[dict[str, Any]]:
    views = sorted(
        k[1]
        for k in state.before
        if k[0] == "feature_view" and name in getattr(state.info(k, "before"), "entities", [])
    )
    if old is None:
        return [_item("entity.added", f"new entity (join key {', '.join(new.join_keys)})")]
    if new is None:
        if views:
            return [_item("entity.removed_in_use", f"entity removed; views {', '.join(views)} use it")]
        return [_item("entity.removed", "entity removed")]
    items = []
    if old.join_keys != new.join_keys:
        items.append(
            _item(
                "entity.join_key",
                f"join key {', '.join(old.join_keys)} → {', '.join(new.join_keys)}: every online key changes",
            )
        )
    if old.value_type != new.value_type:
        items.append(
            _item(
                "entity.value_type",
                f"value type {old.value_type} → {new.value_type}: online keys change",
            )
        )
    return items + _metadata_items(old, new)


def _classify_source(state: _State, name: str, old: Any, new: Any) -> list[dict[str, Any]]:
    views = sorted(
        k[1]
        for k in state.before
        if k[0] == "feature_view" and getattr(state.info(k, "before"), "batch_source", "") == name
    )
    if old is None:
        return [_item("source.added", f"new {new.kind} source")]
    if new is None:
        if views:
            return [_item("source.removed_in_use", f"source removed; views {', '.join(views)} read it")]
        return [_item("source.removed", "source removed")]
    items = _metadata_items(old, new)
    meta_paths = {"description", "owner", "tags"}
    if {c["path"].split(".")[0].split("[")[0] for c in diff_specs(old.spec, new.spec)} - meta_paths:
        items.append(_item("source.changed", f"source definition changed ({old.location} → {new.location})"))
    return items


# --- Who must approve ------------------------------------------------------------------------------------


def _required_teams(project: Project, state: _State, diff: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Owner teams of every affected object (before and after the change) and of the affected services."""
    needed: dict[int, dict[str, Any]] = {}
    directory = TeamDirectory.load()
    keys = [(o["kind"], o["name"]) for o in diff["objects"]]
    for o in diff["objects"]:
        if any(i["rule"].startswith("view.transformation") for i in o["items"]):
            # New transformation code also goes to the owners of the views it reads (a proposer picks the owner
            # of a new view, not of the data its code sees).
            for which in ("before", "after"):
                info = state.info((o["kind"], o["name"]), which)
                keys += [("feature_view", v) for v in getattr(info, "source_views", [])]
    if any(o["severity"] != Severity.SAFE for o in diff["objects"]):
        # Services reading a changed object sign off unless every change is safe (metadata, new fields).
        keys += [("feature_service", s) for s in diff["impact"]["services"]]
    for key in dict.fromkeys(keys):
        for which in ("before", "after"):
            info = state.info(key, which)
            if info is None:
                continue
            team = directory.team_for(owner=info.owner, tags=info.tags, org=getattr(info, "org", ""))
            if team is not None:
                entry = needed.setdefault(team.pk, {"id": team.pk, "name": team.name, "objects": []})
                label = f"{key[0]}:{key[1]}"
                if label not in entry["objects"]:
                    entry["objects"].append(label)
    return sorted(needed.values(), key=lambda t: t["name"])
