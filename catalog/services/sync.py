"""Registry sync: mirror a Feast registry into the catalog (NetBox's DataSource.sync() shape).

1. Take a lease on the registry's SyncState row (conditional UPDATE): two syncs never overlap.
2. Fingerprint the registry (cheap); unchanged since the last success means a no-op run.
3. Read the registry (slow I/O, outside any transaction) and compute the plan in memory.
4. Apply the plan in one transaction: bulk upsert by (project, kind, name), removals marked (never
   deleted), a version per content change, lineage rebuilt for what changed, audit events.
A failure anywhere before the commit leaves the catalog exactly as it was; the SyncRun says why.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog import feast_gateway as gateway
from catalog.bulk import bulk_insert
from catalog.diff import diff_specs
from catalog.exceptions import PortalError, UnknownProject
from catalog.leases import Lease
from catalog.models import (
    AuditEvent,
    CatalogObject,
    ChangeRequest,
    ExpectedChange,
    Feature,
    LineageEdge,
    ObjectVersion,
    Project,
    SearchEntry,
    ServiceFeature,
    Status,
    SyncRun,
    SyncState,
)
from catalog.models.objects import GOVERNED_KINDS
from catalog.search.indexing import index_objects
from catalog.services.audit import audit_event_build, audit_record
from catalog.services.teams import TeamDirectory

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
SYNC_LEASE = Lease(SyncState, until="locked_until", holder="lock_token")  # one sync per registry
BATCH = 2000
# Up to this many changed objects, search entries are rebuilt inside the sync's transaction.
INLINE_INDEX_LIMIT = 2000
Kind = CatalogObject.Kind

# The version of what the sync derives from an object's spec (its Feature, ServiceFeature and LineageEdge rows).
# Bump it when that derivation changes (a new Feature column, a fix in what is derived): the next sync rebuilds
# the rows of every object built by an older one, once, without a new version. 1: vector-search settings of
# fields, and a stream view's entity columns among its fields.
DERIVATION = 1

# Columns derived from the registry that change without a content change (materialization).
_META_FIELDS = (
    "feast_created_at",
    "feast_updated_at",
    "feast_state",
    "feast_version_number",
    "materialization_intervals",
    "last_materialized_end",
    "read_error",  # set while the registry holds the object in a form the portal cannot read
)
_CONTENT_FIELDS = (
    "derived_version",
    "subkind",
    "description",
    "owner",
    "team_id",
    "tags",
    "status",
    "spec",
    "content_hash",
    "join_keys",
    "value_type",
    "location",
    "timestamp_field",
    "entity_names",
    "ttl_seconds",
    "batch_source_name",
    "stream_source_name",
    "online",
    "enabled",
    "feature_count",
)


@dataclass
class _Desired:
    """What the registry says one object should look like (`values` lacks the spec: see with_spec)."""

    project: str
    kind: str
    name: str
    values: dict[str, Any]
    info: gateway.ObjectInfo
    features: list[gateway.FeatureInfo] = field(default_factory=list)
    vector: list[gateway.VectorEntry] = field(default_factory=list)
    upstream: list[tuple[str, str, str]] = field(default_factory=list)  # (edge kind, upstream kind, name)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project, self.kind, self.name)

    def with_spec(self) -> dict[str, Any]:
        """All column values, including the spec JSON (built only for objects being written)."""
        return {**self.values, "spec": self.info.spec}


def _is_deprecated(tags: dict[str, str]) -> bool:
    return tags.get("deprecated", "").lower() in {"true", "1", "yes"} or tags.get("lifecycle") == "deprecated"


def _common(info: gateway.ObjectInfo) -> dict[str, Any]:
    return {
        "description": info.description,
        "owner": info.owner,
        "tags": info.tags,
        "status": Status.DEPRECATED if _is_deprecated(info.tags) else Status.ACTIVE,
        "content_hash": info.content_hash,
        "feast_created_at": info.created_at,
        "feast_updated_at": info.updated_at,
        "read_error": "",
        "derived_version": DERIVATION,  # created and changed objects get their rows derived now
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _desired(snapshot: gateway.RegistrySnapshot) -> list[_Desired]:
    out: list[_Desired] = []
    for e in snapshot.entities:
        out.append(
            _Desired(
                e.project,
                Kind.ENTITY,
                e.name,
                {**_common(e), "join_keys": e.join_keys, "value_type": e.value_type},
                info=e,
            )
        )
    for ds in snapshot.data_sources:
        d = _Desired(
            ds.project,
            Kind.DATA_SOURCE,
            ds.name,
            {
                **_common(ds),
                "subkind": ds.kind,
                "location": ds.location,
                "timestamp_field": ds.timestamp_field,
                "batch_source_name": ds.batch_source,
                "feature_count": len(ds.request_schema),
            },
            features=ds.request_schema,
            info=ds,
        )
        if ds.batch_source:
            d.upstream.append((LineageEdge.Kind.SOURCE_SOURCE, Kind.DATA_SOURCE, ds.batch_source))
        out.append(d)
    for fv in snapshot.feature_views:
        intervals = [{"start": _iso(i.start), "end": _iso(i.end)} for i in fv.materialization_intervals]
        d = _Desired(
            fv.project,
            Kind.FEATURE_VIEW,
            fv.name,
            {
                **_common(fv),
                "subkind": fv.kind,
                "entity_names": fv.entities,
                "ttl_seconds": fv.ttl_seconds,
                "batch_source_name": fv.batch_source,
                "stream_source_name": fv.stream_source,
                "online": fv.online,
                "enabled": fv.enabled,
                "feast_state": fv.state,
                "feast_version_number": fv.current_version_number,
                "materialization_intervals": intervals,
                "last_materialized_end": max((i.end for i in fv.materialization_intervals), default=None),
                "feature_count": len(fv.features),
            },
            features=fv.features,
            info=fv,
        )
        for src in (fv.batch_source, fv.stream_source):
            if src:
                d.upstream.append((LineageEdge.Kind.SOURCE_VIEW, Kind.DATA_SOURCE, src))
        for entity in fv.entities:
            d.upstream.append((LineageEdge.Kind.ENTITY_VIEW, Kind.ENTITY, entity))
        for view in fv.source_views:
            d.upstream.append((LineageEdge.Kind.VIEW_VIEW, Kind.FEATURE_VIEW, view))
        for req in fv.request_sources:
            d.upstream.append((LineageEdge.Kind.REQUEST_VIEW, Kind.DATA_SOURCE, req))
        out.append(d)
    for fs in snapshot.feature_services:
        d = _Desired(
            fs.project,
            Kind.FEATURE_SERVICE,
            fs.name,
            {**_common(fs), "feature_count": len(fs.vector)},
            vector=fs.vector,
            info=fs,
        )
        for view in dict.fromkeys(fs.views):
            d.upstream.append((LineageEdge.Kind.VIEW_SERVICE, Kind.FEATURE_VIEW, view))
        out.append(d)
    for record in snapshot.records:  # saved datasets, validation references, permissions
        values = {**_common(record), "subkind": record.subkind, "location": record.location}
        d = _Desired(record.project, record.kind, record.name, values, info=record)
        d.upstream.extend(record.upstream)
        out.append(d)
    return out


@dataclass
class _Counts:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    out_of_band: int = 0


# --- Public service ------------------------------------------------------------------------------


def registry_sync(
    *,
    source: gateway.RegistrySource | None = None,
    project: str | None = None,
    trigger: str = "manual",
    actor: Any = None,
    force: bool = False,
    index: bool = True,
) -> list[SyncRun]:
    """Sync every governed registry (or one), optionally one project only. Returns one SyncRun per registry.

    With `index` (the default) the search index is then completed for large imports, which the sync
    itself leaves to this separate step (see `search_index_missing`).
    """
    sources = [source] if source is not None else gateway.governed_registries()
    if project is not None:
        sources = [s for s in sources if _holds_project(s, project)] or sources[:1]
    runs = [_sync_registry(s, project=project, trigger=trigger, actor=actor, force=force) for s in sources]
    if index:
        search_index_missing()
    return runs


def search_index_missing() -> int:
    """Index catalog objects that have no search entries yet (after a large import); returns entries written.

    Cheap when nothing is missing (one anti-join). Runs in its own transaction, after the catalog's.
    """
    missing = list(
        CatalogObject.objects.exclude(pk__in=SearchEntry.objects.values("object_id")).values_list("pk", flat=True)
    )
    if not missing:
        return 0
    started = time.perf_counter()
    with transaction.atomic():
        written = index_objects(missing)
    logger.info("search index: %d objects indexed in %.1fs", len(missing), time.perf_counter() - started)
    return written


def _holds_project(source: gateway.RegistrySource, project: str) -> bool:
    return (
        source.repo_for(project) is not None or Project.objects.filter(registry_key=source.key, name=project).exists()
    )


def _finish(run: SyncRun, status: str, started: float, **fields: Any) -> SyncRun:
    run.status = status
    run.finished_at = timezone.now()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    for key, value in fields.items():
        setattr(run, key, value)
    run.save()
    return run


def _sync_registry(
    source: gateway.RegistrySource, *, project: str | None, trigger: str, actor: Any, force: bool
) -> SyncRun:
    started = time.perf_counter()
    state, _ = SyncState.objects.get_or_create(registry_key=source.key)
    run = SyncRun.objects.create(registry_key=source.key, project_filter=project or "", trigger=trigger)
    token = uuid.uuid4().hex
    if not SYNC_LEASE.take(token, LEASE, pk=state.pk):
        return _finish(run, SyncRun.Status.SKIPPED, started, error="another sync of this registry is running")
    try:
        fingerprint = gateway.registry_fingerprint(source.repo)
        if not force and not project and fingerprint == state.fingerprint:
            SyncState.objects.filter(pk=state.pk).update(last_success_at=timezone.now())
            return _finish(run, SyncRun.Status.NOOP, started, fingerprint=fingerprint)
        snapshot = gateway.read_registry(source.repo)
        counts = _apply_snapshot(snapshot, source=source, project=project, run=run, actor=actor)
        if not project:
            SyncState.objects.filter(pk=state.pk).update(
                fingerprint=snapshot.fingerprint, last_success_at=timezone.now()
            )
        status = SyncRun.Status.SUCCEEDED
        return _finish(
            run,
            status,
            started,
            fingerprint=snapshot.fingerprint,
            added=counts.added,
            changed=counts.changed,
            removed=counts.removed,
            unchanged=counts.unchanged,
            out_of_band=counts.out_of_band,
            skipped_objects=[u.describe() for u in snapshot.unreadable],
        )
    except PortalError as exc:
        logger.warning("registry sync of %s failed: %s", source.key, exc)
        return _finish(run, SyncRun.Status.FAILED, started, error=str(exc))
    except Exception as exc:
        logger.exception("registry sync of %s failed unexpectedly", source.key)
        _finish(run, SyncRun.Status.FAILED, started, error=f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        SYNC_LEASE.release(token, pk=state.pk)


# --- Applying a snapshot ---------------------------------------------------------------------------


def _resolve_teams(desired: list[_Desired], projects: Iterable[gateway.ProjectInfo]) -> None:
    """Set team_id on each desired object (catalog.services.teams' rule), creating the teams that team tags and
    Feast orgs name."""
    tag_key = settings.CATALOG_TEAM_TAG
    named = [*(d.values["tags"].get(tag_key, "") for d in desired), *(p.tags.get(tag_key, "") for p in projects)]
    named += [getattr(d.info, "org", "") for d in desired]
    directory = TeamDirectory.load(ensure=named)
    for d in desired:
        team = directory.team_for(owner=d.values["owner"], tags=d.values["tags"], org=getattr(d.info, "org", ""))
        d.values["team_id"] = team.pk if team is not None else None


def _upsert_projects(
    snapshot: gateway.RegistrySnapshot, source: gateway.RegistrySource, only: str | None
) -> dict[str, Project]:
    wanted = [p for p in snapshot.projects if only is None or p.name == only]
    if only is not None and not wanted:
        raise UnknownProject(f"project {only!r} is not in the registry {snapshot.location.display}")
    names = [p.name for p in wanted]
    existing = {p.name: p for p in Project.objects.filter(name__in=names)}
    for p in existing.values():
        if p.registry_key != source.key and p.status != Status.REMOVED:
            raise PortalError(
                f"project {p.name!r} is already mirrored from {p.registry_key}; project names must be unique"
            )
    result: dict[str, Project] = {}
    for info in wanted:
        values = {
            "registry_key": source.key,
            "repo_key": repo.key if (repo := source.repo_for(info.name)) else "",
            "description": info.description,
            "owner": info.owner,
            "tags": info.tags,
            "status": Status.ACTIVE,
            "feast_created_at": info.created_at,
            "feast_updated_at": info.updated_at,
            "content_hash": info.content_hash,
        }
        project = existing.get(info.name)
        if project is None:
            project = Project(name=info.name, **values)
            project.full_clean()
            project.save()
        elif any(getattr(project, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(project, k, v)
            project.save(update_fields=[*values, "updated_at"])
        result[info.name] = project
    if only is None:
        # Projects this registry held before but no longer does.
        Project.objects.filter(registry_key=source.key).exclude(name__in=names).exclude(status=Status.REMOVED).update(
            status=Status.REMOVED, updated_at=timezone.now()
        )
    return result


def _expected(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[ExpectedChange]]:
    keys = list(keys)
    if not keys:
        return {}
    projects = {k[0] for k in keys}
    out: dict[tuple[str, str, str], list[ExpectedChange]] = {}
    # A failed request wrote nothing (its apply is all or nothing): a change matching its hashes came from
    # elsewhere (e.g. a manual `feast apply` repairing the registry) and is out-of-band.
    pending = ExpectedChange.objects.filter(project_name__in=projects, consumed_at__isnull=True).exclude(
        change_request__status=ChangeRequest.Status.FAILED
    )
    for ec in pending:
        out.setdefault((ec.project_name, ec.kind, ec.name), []).append(ec)
    return out


def _apply_snapshot(
    snapshot: gateway.RegistrySnapshot, *, source: gateway.RegistrySource, project: str | None, run: SyncRun, actor: Any
) -> _Counts:
    desired = [d for d in _desired(snapshot) if project is None or d.project == project]
    now = timezone.now()
    counts = _Counts()
    with transaction.atomic():
        projects = _upsert_projects(snapshot, source, project)
        _resolve_teams(desired, [p for p in snapshot.projects if p.name in projects])
        scope = Project.objects.filter(registry_key=source.key)
        if project is not None:
            scope = scope.filter(name=project)
        existing_rows = list(
            CatalogObject.objects.filter(project__in=scope).values(
                "id",
                "project__name",
                "kind",
                "name",
                "content_hash",
                "status",
                "version",
                "derived_version",
                *_META_FIELDS,
            )
        )
        baseline = not existing_rows  # the first import is the baseline, not an out-of-band change
        existing = {(r["project__name"], r["kind"], r["name"]): r for r in existing_rows}
        desired_keys = {d.key for d in desired}
        expected = _expected(
            [d.key for d in desired]
            + [k for k, r in existing.items() if k not in desired_keys and r["status"] != Status.REMOVED]
        )

        to_create: list[CatalogObject] = []
        to_update_content: list[tuple[_Desired, dict[str, Any], str]] = []  # (desired, row, change)
        to_update_meta: list[CatalogObject] = []
        to_rehash: list[CatalogObject] = []
        rederive: dict[int, _Desired] = {}  # unchanged, but its rows were derived by an older sync
        recanonical = _same_under_new_canonical_form(
            [(row, d) for d in desired if (row := existing.get(d.key)) is not None and _hash_moved(row, d)]
        )
        for d in desired:
            row = existing.get(d.key)
            if row is None:
                to_create.append(
                    CatalogObject(project=projects[d.project], kind=d.kind, name=d.name, version=1, **d.with_spec())
                )
            elif row["status"] == Status.REMOVED:
                to_update_content.append((d, row, ObjectVersion.Change.RESTORED))
            elif row["id"] in recanonical:
                counts.unchanged += 1  # only the canonical form moved: store its hash and spec, no version
                to_rehash.append(
                    CatalogObject(
                        id=row["id"],
                        content_hash=d.values["content_hash"],
                        spec=d.info.spec,
                        **{f: d.values.get(f, row[f]) for f in _META_FIELDS},
                    )
                )
            elif row["content_hash"] != d.values["content_hash"] or _status_changed(row, d):
                to_update_content.append((d, row, ObjectVersion.Change.CHANGED))
            else:
                counts.unchanged += 1
                if row["derived_version"] < DERIVATION:
                    rederive[row["id"]] = d
                if any(row[f] != d.values.get(f, row[f]) for f in _META_FIELDS):
                    obj = CatalogObject(id=row["id"], **{f: d.values.get(f, row[f]) for f in _META_FIELDS})
                    to_update_meta.append(obj)
        # Held by the registry but not readable here: never "removed"; the catalog keeps what it last read (or,
        # for an object it never read, a placeholder with its name), marked with why.
        unreadable = {
            (u.project, u.kind, u.name): u
            for u in snapshot.unreadable
            if u.project in projects and u.kind in Kind.values
        }
        placeholders: list[CatalogObject] = []
        for key, u in unreadable.items():
            row = existing.get(key)
            if row is None:
                placeholders.append(
                    CatalogObject(
                        project=projects[u.project],
                        kind=u.kind,
                        name=u.name,
                        spec={},
                        content_hash="",
                        read_error=u.error,
                    )
                )
            elif row["read_error"] != u.error:
                to_update_meta.append(
                    CatalogObject(id=row["id"], **{f: row[f] for f in _META_FIELDS} | {"read_error": u.error})
                )
        removed_rows = [
            r
            for k, r in existing.items()
            if k not in desired_keys and k not in unreadable and r["status"] != Status.REMOVED
        ]

        # Old specs, for the field-level change summary (only for what changed).
        old_specs = dict(
            CatalogObject.objects.filter(
                id__in=[r["id"] for _, r, _ in to_update_content] + [r["id"] for r in removed_rows]
            ).values_list("id", "spec")
        )

        bulk_insert(CatalogObject, to_create + placeholders)
        ids_by_key = _ids_by_key(scope) if to_create or placeholders else {}
        versions: list[ObjectVersion] = []
        audits: list[AuditEvent] = []
        desired_by_key = {d.key: d for d in desired}

        def record(
            obj_id: int,
            key: tuple[str, str, str],
            version: int,
            change: str,
            snap: dict[str, Any],
            changes: list[Any],
            content_hash: str,
        ) -> None:
            in_band = _consume_expected(
                expected, key, content_hash if change != ObjectVersion.Change.REMOVED else "", now
            )
            # Only governed kinds can change outside governance: saved datasets (the portal registers some),
            # validation references and permissions are recorded, never flagged.
            oob = not baseline and in_band is None and key[1] in GOVERNED_KINDS
            versions.append(
                ObjectVersion(
                    object_id=obj_id,
                    version=version,
                    change=change,
                    content_hash=content_hash,
                    snapshot=snap,
                    changes=changes,
                    sync_run=run,
                    out_of_band=oob,
                    change_request_id=in_band.change_request_id if in_band is not None else None,
                    recorded_at=now,
                )
            )
            if oob:
                counts.out_of_band += 1
                audits.append(
                    audit_event_build(
                        action="catalog.out_of_band_change_detected",
                        object_type=key[1],
                        object_id=str(obj_id),
                        object_repr=f"{key[0]}/{key[2]}",
                        after={"change": change, "version": version, "sync_run": run.pk, "changes": changes[:50]},
                    )
                )

        for new in to_create:
            d = desired_by_key[(new.project.name, new.kind, new.name)]
            new.id = ids_by_key[d.key]
            record(new.id, d.key, 1, ObjectVersion.Change.ADDED, d.info.spec, [], d.values["content_hash"])
        counts.added = len(to_create)

        updates: list[CatalogObject] = []
        for d, row, change in to_update_content:
            version = row["version"] + 1
            obj = CatalogObject(id=row["id"], version=version, removed_at=None, **d.with_spec())
            updates.append(obj)
            changes = diff_specs(old_specs.get(row["id"], {}), d.info.spec)
            record(row["id"], d.key, version, change, d.info.spec, changes, d.values["content_hash"])
        CatalogObject.objects.bulk_update(
            updates, [*_CONTENT_FIELDS, *_META_FIELDS, "version", "removed_at"], batch_size=BATCH
        )
        counts.changed = len(updates)
        if to_update_meta:
            CatalogObject.objects.bulk_update(to_update_meta, list(_META_FIELDS), batch_size=BATCH)
        if to_rehash:
            CatalogObject.objects.bulk_update(to_rehash, ["content_hash", "spec", *_META_FIELDS], batch_size=BATCH)

        for row in removed_rows:
            key = (row["project__name"], row["kind"], row["name"])
            record(
                row["id"],
                key,
                row["version"] + 1,
                ObjectVersion.Change.REMOVED,
                old_specs.get(row["id"], {}),
                [],
                row["content_hash"],
            )
        removed_ids = [r["id"] for r in removed_rows]
        if removed_ids:
            for chunk in _chunks(removed_rows, BATCH):
                CatalogObject.objects.bulk_update(
                    [
                        CatalogObject(id=r["id"], status=Status.REMOVED, removed_at=now, version=r["version"] + 1)
                        for r in chunk
                    ],
                    ["status", "removed_at", "version"],
                )
            Feature.objects.filter(view_id__in=removed_ids).update(status=Status.REMOVED)
        counts.removed = len(removed_rows)

        touched = {new.id: desired_by_key[(new.project.name, new.kind, new.name)] for new in to_create}
        touched.update({row["id"]: d for d, row, _ in to_update_content})
        touched.update(rederive)
        if rederive:
            CatalogObject.objects.filter(id__in=list(rederive)).update(derived_version=DERIVATION)
        if touched:
            _sync_features(touched)
            ids_by_key = ids_by_key or _ids_by_key(scope)
            _sync_vectors(touched, ids_by_key)
            _sync_edges(touched, ids_by_key, projects)
        reindex = set(touched) | set(removed_ids) | {ids_by_key[(p.project.name, p.kind, p.name)] for p in placeholders}
        if len(reindex) <= INLINE_INDEX_LIMIT:
            index_objects(reindex)  # the usual case: the index changes with the catalog, atomically
        else:
            # A large import: drop what is stale now; search_index_missing() rebuilds it right after.
            SearchEntry.objects.filter(object_id__in=reindex).delete()
        bulk_insert(ObjectVersion, versions)
        bulk_insert(AuditEvent, audits)
        if counts.added or counts.changed or counts.removed:
            audit_record(
                actor=actor,
                action="registry.synced",
                object_type="registry",
                object_id=str(run.pk),
                object_repr=snapshot.location.display[:500],
                after={
                    "added": counts.added,
                    "changed": counts.changed,
                    "removed": counts.removed,
                    "out_of_band": counts.out_of_band,
                    "projects": sorted(projects),
                },
            )
    return counts


def _hash_moved(row: dict[str, Any], d: _Desired) -> bool:
    return bool(row["status"] != Status.REMOVED and row["content_hash"] != d.values["content_hash"])


def _same_under_new_canonical_form(pairs: list[tuple[dict[str, Any], _Desired]]) -> set[int]:
    """Ids of the objects whose stored spec hashes, under today's canonical form, to what the registry holds
    now: their hash moved because the portal's canonical form did (after an upgrade), not the registry."""
    if not pairs:
        return set()
    stored = dict(CatalogObject.objects.filter(id__in=[r["id"] for r, _ in pairs]).values_list("id", "spec"))
    subkinds = dict(CatalogObject.objects.filter(id__in=[r["id"] for r, _ in pairs]).values_list("id", "subkind"))
    return {
        row["id"]
        for row, d in pairs
        if not _status_changed(row, d)
        and gateway.recanonical_hash(d.kind, subkinds[row["id"]], stored[row["id"]] or {}) == d.values["content_hash"]
    }


def _status_changed(row: dict[str, Any], d: _Desired) -> bool:
    return bool(row["status"] != d.values["status"])


def _consume_expected(
    expected: dict[tuple[str, str, str], list[ExpectedChange]],
    key: tuple[str, str, str],
    content_hash: str,
    now: datetime,
) -> ExpectedChange | None:
    """The portal's own pending write of this content (consumed), or None: the change is out-of-band."""
    for ec in expected.get(key, []):
        if ec.consumed_at is None and ec.content_hash == content_hash:
            ec.consumed_at = now
            ExpectedChange.objects.filter(pk=ec.pk).update(consumed_at=now)
            return ec
    return None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _ids_by_key(scope: Any) -> dict[tuple[str, str, str], int]:
    return {
        (p, k, n): i
        for i, p, k, n in CatalogObject.objects.filter(project__in=scope).values_list(
            "id", "project__name", "kind", "name"
        )
    }


def _sync_features(touched: dict[int, _Desired]) -> None:
    """Upsert the fields of changed views by name; fields that disappeared are kept as removed."""
    ids = [i for i, d in touched.items() if d.kind in (Kind.FEATURE_VIEW, Kind.DATA_SOURCE)]
    current: dict[tuple[int, str], int] = {
        (v, n): i for i, v, n in Feature.objects.filter(view_id__in=ids).values_list("id", "view_id", "name")
    }
    create: list[Feature] = []
    update: list[Feature] = []
    seen: set[tuple[int, str]] = set()
    for view_id in ids:
        for f in touched[view_id].features:
            key = (view_id, f.name)
            seen.add(key)
            values = {
                "dtype": f.dtype,
                "description": f.description,
                "tags": f.tags,
                "position": f.position,
                "status": Status.ACTIVE,
                "vector_search": f.vector_search,
            }
            if key in current:
                update.append(Feature(id=current[key], **values))
            else:
                create.append(Feature(view_id=view_id, name=f.name, **values))
    gone = [i for key, i in current.items() if key not in seen]
    if gone:
        Feature.objects.filter(id__in=gone).update(status=Status.REMOVED)
    Feature.objects.bulk_update(
        update, ["dtype", "description", "tags", "position", "status", "vector_search"], batch_size=BATCH
    )
    bulk_insert(Feature, create)


def _sync_vectors(touched: dict[int, _Desired], ids: dict[tuple[str, str, str], int]) -> None:
    services = [i for i, d in touched.items() if d.kind == Kind.FEATURE_SERVICE]
    if not services:
        return
    ServiceFeature.objects.filter(service_id__in=services).delete()
    rows = [
        ServiceFeature(
            service_id=sid,
            index=v.index,
            view_name=v.feature_view,
            view_alias=v.view_alias,
            feature_name=v.feature,
            dtype=v.dtype,
            view_id=ids.get((touched[sid].project, Kind.FEATURE_VIEW, v.feature_view)),
        )
        for sid in services
        for v in touched[sid].vector
    ]
    bulk_insert(ServiceFeature, rows)


def _sync_edges(
    touched: dict[int, _Desired], ids: dict[tuple[str, str, str], int], projects: dict[str, Project]
) -> None:
    """Edges are owned by their downstream object: rebuild them for every object that changed."""
    LineageEdge.objects.filter(downstream_id__in=list(touched)).delete()
    rows: dict[tuple[int, int, str], LineageEdge] = {}
    for obj_id, d in touched.items():
        for edge_kind, up_kind, up_name in d.upstream:
            up_id = ids.get((d.project, up_kind, up_name))
            if up_id is not None and up_id != obj_id:
                rows[(up_id, obj_id, edge_kind)] = LineageEdge(
                    project=projects[d.project], kind=edge_kind, upstream_id=up_id, downstream_id=obj_id
                )
    bulk_insert(LineageEdge, list(rows.values()))
