"""The model contract: a feature service's vector as an ordered, hashed list a model can pin.

A model reads positions, not names. The contract of a feature service (one version of it) is the
ordered list of `{index, feature_view, view_alias, feature, dtype}` from the registry's declared
projections, aliases and sub-selections resolved (`feature_view` is the real view, `view_alias`
the projection's alias or ""), and a SHA-256 of that list. Training datasets record the hash of the
contract they were built with, models (consumers) pin it, and serving verifies it
(`POST .../contract/verify/`) before building the vector in contract order.

The hash covers, per position: the index, the view, the alias, the feature and its dtype, in a
canonical JSON form with a format number, so it never depends on Python's hash seed, dict order or
the service's name: two services with the same vector have the same contract. Governance calls
`contract_for_vector()` with a proposed vector, so a change request and the catalog use one definition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog import feast_gateway as gateway
from catalog.models import CatalogObject, ModelConsumer, ObjectVersion, ServiceFeature

CONTRACT_FORMAT = 1


@dataclass(frozen=True)
class ContractEntry:
    """Position `index` of a contract: what the model receives there."""

    index: int
    feature_view: str
    view_alias: str
    feature: str
    dtype: str

    @property
    def reference(self) -> str:
        """`<alias or view>:<feature>`, the reference Feast serves it under."""
        return f"{self.view_alias or self.feature_view}:{self.feature}"

    @property
    def column(self) -> str:
        """`<alias or view>__<feature>`: the training column and the online key (`full_feature_names=True`)."""
        return f"{self.view_alias or self.feature_view}__{self.feature}"

    def key(self) -> tuple[str, str, str]:
        """What identifies the value regardless of its position."""
        return (self.feature_view, self.view_alias, self.feature)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "feature_view": self.feature_view,
            "view_alias": self.view_alias,
            "feature": self.feature,
            "dtype": self.dtype,
            "reference": self.reference,
            "column": self.column,
        }


@dataclass(frozen=True)
class Contract:
    """An ordered contract and its hash."""

    entries: tuple[ContractEntry, ...]
    hash: str

    @property
    def columns(self) -> list[str]:
        """Training columns (and online keys) in contract order."""
        return [e.column for e in self.entries]

    @property
    def references(self) -> list[str]:
        """`view:feature` references in contract order."""
        return [e.reference for e in self.entries]

    def as_dict(self) -> dict[str, Any]:
        return {"format": CONTRACT_FORMAT, "hash": self.hash, "entries": [e.as_dict() for e in self.entries]}


VectorTuple = tuple[str, str, str, str]  # (feature_view, view_alias, feature, dtype)


def _tuples(entries: Iterable[VectorTuple | ContractEntry | Sequence[str]]) -> list[VectorTuple]:
    out: list[VectorTuple] = []
    for e in entries:
        if isinstance(e, ContractEntry):
            out.append((e.feature_view, e.view_alias, e.feature, e.dtype))
        else:
            feature_view, view_alias, feature, dtype = e
            out.append((str(feature_view), str(view_alias or ""), str(feature), str(dtype)))
    return out


def contract_hash(entries: Iterable[VectorTuple | ContractEntry | Sequence[str]]) -> str:
    """SHA-256 (hex, 64 characters) of the ordered entries `(feature_view, view_alias, feature, dtype)`."""
    canonical = json.dumps(
        {"format": CONTRACT_FORMAT, "entries": [[i, *t] for i, t in enumerate(_tuples(entries))]},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def contract_for_vector(entries: Iterable[VectorTuple | ContractEntry | Sequence[str]]) -> Contract:
    """The contract of a vector given in order as `(feature_view, view_alias, feature, dtype)` tuples.

    The one definition of the contract: the catalog, training datasets and governance (a proposed
    vector) all call this.
    """
    tuples = _tuples(entries)
    return Contract(
        entries=tuple(
            ContractEntry(i, fv, alias, feature, dtype) for i, (fv, alias, feature, dtype) in enumerate(tuples)
        ),
        hash=contract_hash(tuples),
    )


def contract_for_features(features: Sequence[tuple[str, str, str]]) -> Contract:
    """The contract of a plain feature list `(view, feature, dtype)`, in the order given."""
    return contract_for_vector([(view, "", feature, dtype) for view, feature, dtype in features])


def contract_for_service(service: CatalogObject, rows: Iterable[ServiceFeature] | None = None) -> Contract:
    """The current contract of a feature service, from the catalog's vector (its latest synced version).

    `rows`: the service's ServiceFeature rows when the caller already holds them (a page).
    """
    if rows is None:
        rows = ServiceFeature.objects.filter(service=service).order_by("index")
    ordered = sorted(rows, key=lambda r: r.index)
    return contract_for_vector([(r.view_name, r.view_alias, r.feature_name, r.dtype) for r in ordered])


def contract_for_spec(spec: dict[str, Any]) -> Contract:
    """The contract of a feature service spec as the registry stores it (a version snapshot)."""
    return contract_for_vector(
        [(v.feature_view, v.view_alias, v.feature, v.dtype) for v in gateway.vector_from_spec(spec)]
    )


@dataclass(frozen=True)
class ContractVersion:
    """The contract a recorded version of a service had (None when that version is a removal)."""

    version: int
    recorded_at: datetime
    change: str
    contract: Contract | None


def contract_history(service: CatalogObject, versions: Iterable[ObjectVersion] | None = None) -> list[ContractVersion]:
    """The contract of every recorded version of a service, newest first (`versions`: already read)."""
    if versions is None:
        versions = ObjectVersion.objects.filter(object=service)
    out: list[ContractVersion] = []
    for v in sorted(versions, key=lambda v: -v.version):
        contract = None if v.change == ObjectVersion.Change.REMOVED or not v.snapshot else contract_for_spec(v.snapshot)
        out.append(ContractVersion(v.version, v.recorded_at, v.change, contract))
    return out


def contract_diff(
    before: Contract | Sequence[ContractEntry], after: Contract | Sequence[ContractEntry]
) -> list[dict[str, Any]]:
    """What changed between two contracts, position by position and per feature.

    Each change is one of: `moved` (same feature, another index), `added`, `removed`,
    `dtype_changed`. A model pinned to `before` reads the wrong value at every index listed.
    """
    old = list(before.entries if isinstance(before, Contract) else before)
    new = list(after.entries if isinstance(after, Contract) else after)
    old_by_key = {e.key(): e for e in old}
    new_by_key = {e.key(): e for e in new}
    changes: list[dict[str, Any]] = []
    for e in old:
        now = new_by_key.get(e.key())
        if now is None:
            changes.append({"change": "removed", "reference": e.reference, "index": e.index, "dtype": e.dtype})
            continue
        if now.index != e.index:
            changes.append({"change": "moved", "reference": e.reference, "from_index": e.index, "to_index": now.index})
        if now.dtype != e.dtype:
            changes.append(
                {
                    "change": "dtype_changed",
                    "reference": e.reference,
                    "index": now.index,
                    "before": e.dtype,
                    "after": now.dtype,
                }
            )
    for e in new:
        if e.key() not in old_by_key:
            changes.append({"change": "added", "reference": e.reference, "index": e.index, "dtype": e.dtype})
    return sorted(changes, key=lambda c: (c.get("index", c.get("from_index", 0)), c["change"]))


def contract_entries_from_json(items: Any) -> list[ContractEntry]:
    """Contract entries sent by a client (`[{feature_view, view_alias?, feature, dtype}, ...]`, in order).

    Raises TypeError naming the first malformed item.
    """
    if not isinstance(items, list):
        raise TypeError("entries must be a list")
    out: list[ContractEntry] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("feature_view", "feature", "dtype")
        ):
            raise TypeError(f"entries[{i}] needs feature_view, feature and dtype strings")
        alias = item.get("view_alias") or ""
        if not isinstance(alias, str):
            raise TypeError(f"entries[{i}].view_alias must be a string")
        out.append(ContractEntry(i, item["feature_view"], alias, item["feature"], item["dtype"]))
    return out


@dataclass(frozen=True)
class Verification:
    """The answer to "is my pinned contract still the service's contract?"."""

    match: bool
    given_hash: str
    current: Contract
    version: int  # the catalog version of the service the current contract belongs to
    known_version: int | None  # the newest recorded version whose contract has the given hash
    diff: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "result": "match" if self.match else "mismatch",
            "hash": self.given_hash,
            "current_hash": self.current.hash,
            "version": self.version,
            "known_version": self.known_version,
        }
        if not self.match:
            body["diff"] = self.diff
            body["current"] = [e.as_dict() for e in self.current.entries]
        return body


def contract_verify(
    *, service: CatalogObject, given_hash: str, entries: Sequence[ContractEntry] | None = None
) -> Verification:
    """Compare a pinned hash with the service's current contract; on a mismatch, say what differs.

    The pinned contract is found among the service's recorded versions by its hash; a client may
    also send the entries it pinned (`entries`), which are used when the hash is not in the history.
    """
    current = contract_for_service(service)
    given = given_hash.strip().lower()
    if given == current.hash:
        return Verification(
            match=True, given_hash=given, current=current, version=service.version, known_version=service.version
        )
    known = _recorded_with_hash(service, given)
    pinned: Sequence[ContractEntry] | None = known.contract.entries if known and known.contract else None
    if pinned is None and entries is not None and contract_hash(entries) == given:
        pinned = entries
    diff = contract_diff(pinned, current) if pinned is not None else []
    return Verification(
        match=False,
        given_hash=given,
        current=current,
        version=service.version,
        known_version=known.version if known else None,
        diff=diff,
    )


def _recorded_with_hash(service: CatalogObject, digest: str) -> ContractVersion | None:
    """The newest recorded version of the service whose contract has this hash."""
    return next((v for v in contract_history(service) if v.contract and v.contract.hash == digest), None)


@dataclass(frozen=True)
class ModelContract:
    """A registered model's pinned contract against its service's current one (its page).

    `matches` is None when the model pins nothing; `pinned` is None when the pinned hash is not among
    the service's recorded versions (then only the current vector and the hash are known).
    """

    current: Contract
    pinned_hash: str
    matches: bool | None
    pinned: Contract | None = None
    pinned_version: int | None = None
    diff: list[dict[str, Any]] = field(default_factory=list)

    def pinned_rows(self) -> list[tuple[ContractEntry, str]]:
        """The pinned vector, each position with what became of it ("" when nothing)."""
        return _annotated(self.pinned.entries if self.pinned else (), self.diff, _WHAT_BECAME_OF_IT)

    def current_rows(self) -> list[tuple[ContractEntry, str]]:
        """The current vector, each position with how it differs from the pinned one ("" when it does not)."""
        return _annotated(self.current.entries, self.diff, _WHAT_IT_WAS)


_Note = dict[str, Any]
_WHAT_BECAME_OF_IT: dict[str, Callable[[_Note], str]] = {
    "removed": lambda c: "removed",
    "moved": lambda c: f"now at index {c['to_index']}",
    "dtype_changed": lambda c: f"now {c['after']}",
}
_WHAT_IT_WAS: dict[str, Callable[[_Note], str]] = {
    "added": lambda c: "added",
    "moved": lambda c: f"was at index {c['from_index']}",
    "dtype_changed": lambda c: f"was {c['before']}",
}


def _annotated(
    entries: Iterable[ContractEntry], diff: list[_Note], notes: dict[str, Callable[[_Note], str]]
) -> list[tuple[ContractEntry, str]]:
    by_reference: dict[str, list[str]] = {}
    for change in diff:
        if change["change"] in notes:
            by_reference.setdefault(change["reference"], []).append(notes[change["change"]](change))
    return [(e, ", ".join(by_reference.get(e.reference, []))) for e in entries]


def model_contract(consumer: ModelConsumer, rows: Iterable[ServiceFeature] | None = None) -> ModelContract:
    """The contract a model pinned, the service's current contract and, when they differ, what changed."""
    current = contract_for_service(consumer.service, rows)
    pinned_hash = consumer.contract_hash.strip().lower()
    if not pinned_hash:
        return ModelContract(current=current, pinned_hash="", matches=None)
    if pinned_hash == current.hash:
        return ModelContract(current=current, pinned_hash=pinned_hash, matches=True, pinned=current)
    known = _recorded_with_hash(consumer.service, pinned_hash)
    pinned = known.contract if known else None
    return ModelContract(
        current=current,
        pinned_hash=pinned_hash,
        matches=False,
        pinned=pinned,
        pinned_version=known.version if known else None,
        diff=contract_diff(pinned, current) if pinned else [],
    )


@dataclass(frozen=True)
class PinnedModel:
    """A registered model and whether its pinned contract is the service's current one."""

    consumer: ModelConsumer
    matches: bool | None  # None: the model pins no contract


def pinned_models(
    service: CatalogObject, contract: Contract | None = None, consumers: Iterable[ModelConsumer] | None = None
) -> list[PinnedModel]:
    """Models registered against the service, each with whether its pin matches the current contract."""
    current = contract or contract_for_service(service)
    if consumers is None:
        consumers = ModelConsumer.objects.filter(service=service).order_by("name", "version")
    return [PinnedModel(c, (c.contract_hash.lower() == current.hash) if c.contract_hash else None) for c in consumers]
