"""Training datasets: check the request in the web tier, build the dataset in a worker.

Web tier (`training_dataset_start`): the target (a feature service or a feature list) and the entity
rows are checked against the catalog before anything is queued: missing join keys, no
`event_timestamp`, unknown features, no rows, a file over `PORTAL_TRAINING_MAX_UPLOAD_BYTES` -- each a
400/413 that names the problem, with nothing stored and no job created. A valid entity file is stored
once, normalised to parquet, in the dataset storage; then one transaction creates the JobRun, the
TrainingDataset row and the audit event, and the task is enqueued on commit.

Worker (`training_dataset_run`): re-checks the service's contract against the registry (a change since
the request fails the job rather than silently building another vector), runs Feast's point-in-time
join in chunks of `PORTAL_TRAINING_CHUNK_ROWS` entity rows, writes parquet (and CSV for small sets) with
the feature columns in contract order plus `contract.json`, records schema, null rates, first rows,
time range and row count, and registers a Feast saved dataset where the offline store can read one.
A failure removes every file it wrote.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from catalog import feast_gateway as gateway
from catalog.contracts import Contract, contract_diff, contract_for_vector
from catalog.exceptions import DuplicateObject, InvalidInput, NotPermitted, ObjectNotFound, PortalError
from catalog.jsonvalues import json_value
from catalog.services.audit import audit_record
from jobs.models import JobRun, TrainingDataset
from jobs.permissions import can_build_training_dataset
from jobs.services.core import job_run_log, job_run_progress, job_run_queue
from jobs.services.dataset_storage import DatasetStorage, dataset_storage
from jobs.services.materialization import reject_nul
from jobs.services.training_input import (
    PREVIEW_ROWS,
    TIMESTAMP,
    UPLOADS,
    DatasetTarget,
    arrow_type,
    check_upload_size,
    entities_from_columns,
    parse_entity_timestamps,
    read_entity_file,
    training_target,
)

logger = logging.getLogger(__name__)


# --- Starting a job (web tier) ---------------------------------------------------------------------------


def _dataset_name(name: str, project: str) -> str:
    if not name:
        return ""
    slug = slugify(name)[:200]
    if slug != name:
        raise InvalidInput(
            f"name {name!r} must be a slug (letters, digits, - and _), e.g. {slug or 'attrition-2026-11'}",
            {"name": ["letters, digits, - and _ only"]},
        )
    if TrainingDataset.objects.filter(project=project, name=name).exists():
        raise DuplicateObject(f"a training dataset named {name} already exists in {project}")
    return name


def training_dataset_start(
    *,
    actor: Any,
    project: str,
    feature_service: str | None = None,
    features: list[str] | None = None,
    entity_file: IO[bytes] | None = None,
    entity_file_name: str = "",
    entity_file_size: int | None = None,
    entities: Any = None,
    entity_timestamps: Any = None,
    name: str = "",
    trigger: str = "api",
) -> JobRun:
    """Queue a training dataset: check everything, store the entity rows, create the rows, enqueue on commit.

    Exactly one entity source: `entity_file` (CSV or parquet), `entities` (columns inline) or
    `entity_timestamps` (every entity with a value at each time). Bad input raises (InvalidInput,
    ObjectNotFound, EntityFileTooLarge, NotPermitted) and leaves nothing behind.
    """
    if not can_build_training_dataset(actor):
        raise NotPermitted("building a training dataset needs the proposer role or above")
    reject_nul(project=project, feature_service=feature_service, features=features, name=name)
    if entity_file is not None:
        check_upload_size(entity_file_size)  # before reading a byte of it
    sources = [s for s, v in (("file", entity_file), ("inline", entities), ("timestamps", entity_timestamps)) if v]
    if len(sources) != 1:
        raise InvalidInput(
            "give exactly one of entity_file, entities or entity_timestamps",
            {"entity_file": ["one entity source: a file, inline rows, or timestamps"]},
        )
    target = training_target(project=project, feature_service=feature_service, features=features)
    base = slugify(feature_service or "features")
    name = _dataset_name(name, project)
    table: Any = None
    stamps: list[datetime] = []
    if entity_file is not None:
        table = read_entity_file(file=entity_file, name=entity_file_name, size=entity_file_size, target=target)
        source = TrainingDataset.EntitySource.UPLOAD
    elif entities:
        reject_nul(entities=entities)
        table = entities_from_columns(entities, target)
        source = TrainingDataset.EntitySource.INLINE
    else:
        stamps = parse_entity_timestamps(entity_timestamps, target)
        source = TrainingDataset.EntitySource.TIMESTAMPS
    storage = dataset_storage()
    upload = ""
    if table is not None:
        import pyarrow.parquet as pq

        upload = f"{UPLOADS}/{uuid.uuid4().hex}.parquet"
        storage.makedirs(UPLOADS)
        with storage.open_output(upload) as out:
            pq.write_table(table, out)
    try:
        with transaction.atomic():
            return _queue(
                actor=actor,
                target=target,
                name=name,
                base=base,
                source=source,
                table=table,
                stamps=stamps,
                upload=upload,
                file_name=entity_file_name,
                trigger=trigger,
            )
    except BaseException:
        if upload:
            storage.delete_file(upload)
        raise


def _queue(
    *,
    actor: Any,
    target: DatasetTarget,
    name: str,
    base: str,
    source: str,
    table: Any,
    stamps: list[datetime],
    upload: str,
    file_name: str,
    trigger: str,
) -> JobRun:
    params = {
        "project": target.project,
        "feature_service": target.feature_service,
        "features": None if target.feature_service else target.features,
        "entity_source": source,
        "entity_rows": table.num_rows if table is not None else None,
        "entity_timestamps": [t.isoformat() for t in stamps] or None,
        "contract_hash": target.contract.hash,
        "join_keys": list(target.join_keys),
        "entity_views": target.entity_views,
        "upload": upload or None,
    }
    run = job_run_queue(
        kind=JobRun.Kind.TRAINING_DATASET,
        params=params,
        actor=actor,
        trigger=trigger,
        action="training_dataset.started",
        audit_after={k: v for k, v in params.items() if k != "upload"},
    )
    dataset = TrainingDataset(
        job_run=run,
        name=name or f"{base}-{run.pk}",
        project=target.project,
        feature_service=target.feature_service or "",
        service_version=target.service_version,
        features=target.features,
        contract=[e.as_dict() for e in target.contract.entries],
        contract_hash=target.contract.hash,
        entity_source=source,
        entity_file_name=file_name[:255],
        entity_timestamps=[t.isoformat() for t in stamps],
        entity_rows=table.num_rows if table is not None else 0,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    dataset.full_clean()
    dataset.save()
    JobRun.objects.filter(pk=run.pk).update(params={**params, "dataset": dataset.pk, "name": dataset.name})
    run.refresh_from_db()
    return run


# --- Building (worker) -------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    """What a build wrote and measured (no database involved: the benchmark calls this directly)."""

    rows: int = 0
    columns: list[dict[str, Any]] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    min_event_timestamp: datetime | None = None
    max_event_timestamp: datetime | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunks: int = 0
    feast_seconds: float = 0.0
    seconds: float = 0.0


def dataset_build(
    *,
    repo: gateway.RepoRef,
    storage: DatasetStorage,
    directory: str,
    entity_table: Any,
    contract: Contract,
    feature_service: str | None,
    features: list[str],
    join_keys: list[str],
    metadata: dict[str, Any],
    chunk_rows: int | None = None,
    csv_max_rows: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BuildResult:
    """Join features onto the entity rows chunk by chunk (Feast) and write the dataset's files.

    Files under `directory`: data.parquet (entity columns, then the features in contract order),
    data.csv when the set has at most `csv_max_rows` rows, and contract.json (the contract, hash and
    this metadata). On any failure the directory is removed: nothing partial is left.
    """
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    chunk_rows = chunk_rows or settings.PORTAL_TRAINING_CHUNK_ROWS
    csv_max_rows = settings.PORTAL_TRAINING_CSV_MAX_ROWS if csv_max_rows is None else csv_max_rows
    total = entity_table.num_rows
    chunks = max(1, -(-total // chunk_rows))
    steps = chunks + 1
    result = BuildResult(rows=0, chunks=chunks)
    schema = _output_schema(entity_table.schema, contract)
    nulls = dict.fromkeys(schema.names, 0)
    write_csv = total <= csv_max_rows
    storage.makedirs(directory)
    try:
        with storage.open_output(directory, "data.parquet") as parquet_out:
            parquet = pq.ParquetWriter(parquet_out, schema, compression="zstd")
            csv_buffer = storage.open_output(directory, "data.csv") if write_csv else None
            csv_schema = _csv_table(schema.empty_table()).schema
            csv = pacsv.CSVWriter(csv_buffer, csv_schema) if csv_buffer is not None else None
            try:
                for i in range(chunks):
                    if progress:
                        progress(
                            i,
                            steps,
                            f"joining features onto entity rows {i * chunk_rows + 1:,}–"
                            f"{min(total, (i + 1) * chunk_rows):,} of {total:,} (Feast point-in-time join)",
                        )
                    part = entity_table.slice(i * chunk_rows, chunk_rows)
                    t0 = time.perf_counter()
                    joined = gateway.historical_features(
                        repo,
                        entity_table=part,
                        columns=contract.columns,
                        feature_service=feature_service,
                        features=None if feature_service else features,
                    )
                    result.feast_seconds += time.perf_counter() - t0
                    joined = _conform(joined, schema)
                    parquet.write_table(joined)
                    if csv is not None:
                        csv.write_table(_csv_table(joined))
                    for name in schema.names:
                        nulls[name] += joined[name].null_count
                    if not result.preview:
                        result.preview = [
                            {k: json_value(v) for k, v in row.items()}
                            for row in joined.slice(0, PREVIEW_ROWS).to_pylist()
                        ]
                    result.rows += joined.num_rows
            finally:
                parquet.close()
                if csv is not None:
                    csv.close()
                if csv_buffer is not None:
                    csv_buffer.close()
        if progress:
            progress(chunks, steps, "writing the contract and the schema")
        ts = entity_table[TIMESTAMP]
        result.min_event_timestamp = pc.min(ts).as_py() if total else None
        result.max_event_timestamp = pc.max(ts).as_py() if total else None
        roles = {
            **dict.fromkeys(join_keys, "join_key"),
            TIMESTAMP: "event_timestamp",
            **{c: "feature" for c in contract.columns},
        }
        by_column = {e.column: e for e in contract.entries}
        result.columns = [
            {
                "name": f.name,
                "role": roles.get(f.name, "entity_column"),
                "type": str(f.type),
                "dtype": by_column[f.name].dtype if f.name in by_column else "",
                "reference": by_column[f.name].reference if f.name in by_column else "",
                "index": by_column[f.name].index if f.name in by_column else None,
                "nulls": nulls[f.name],
                "null_rate": round(nulls[f.name] / result.rows, 6) if result.rows else 0.0,
            }
            for f in schema
        ]
        document = {
            **contract.as_dict(),
            "columns": [c["name"] for c in result.columns],
            "feature_columns": contract.columns,
            "rows": result.rows,
            "min_event_timestamp": _iso(result.min_event_timestamp),
            "max_event_timestamp": _iso(result.max_event_timestamp),
            **metadata,
        }
        with storage.open_output(directory, "contract.json") as out:
            out.write(json.dumps(document, indent=2).encode())
        for fmt, file_name in (("parquet", "data.parquet"), ("csv", "data.csv"), ("contract", "contract.json")):
            size = storage.size(directory, file_name)
            if size is not None:
                result.files[fmt] = {"name": file_name, "bytes": size}
    except BaseException:
        storage.delete_dir(directory)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _output_schema(entity_schema: Any, contract: Contract) -> Any:
    """Entity columns as given, then one column per contract entry (its Feast type; strings otherwise)."""
    import pyarrow as pa

    fields = list(entity_schema)
    for e in contract.entries:
        fields.append(pa.field(e.column, _feature_arrow_type(e.dtype)))
    return pa.schema(fields)


def _feature_arrow_type(dtype: str) -> Any:
    """A feature's column type: Feast's scalar types natively, arrays as lists of them; Map, Struct and Json
    as JSON text (a Map's or Struct's Arrow shape depends on the data, and one schema holds every chunk)."""
    import pyarrow as pa

    for wrapper in ("Array(", "Set("):
        if dtype.startswith(wrapper) and dtype.endswith(")"):
            inner = arrow_type(dtype[len(wrapper) : -1])
            return pa.list_(inner) if inner is not None else pa.string()
    return arrow_type(dtype) or pa.string()


def _json_text(column: Any) -> Any:
    """A nested column (struct, map, list) as JSON text per value (null stays null)."""
    import pyarrow as pa

    is_map = pa.types.is_map(column.type)
    return pa.array(
        [None if v is None else json.dumps(json_value(dict(v) if is_map else v)) for v in column.to_pylist()],
        pa.string(),
    )


def _is_nested(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_nested(arrow_type))


def _csv_table(table: Any) -> Any:
    """The dataset as CSV can hold it: nested columns (arrays) as JSON text, bytes as hex (as the preview)."""
    import pyarrow as pa

    def text(column: Any) -> Any:
        if _is_nested(column.type):
            return _json_text(column)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            return pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())
        return column

    return pa.table([text(c) for c in table.columns], names=table.column_names)


def _conform(table: Any, schema: Any) -> Any:
    """Feast's output cast to the dataset's schema (pandas turns an int column with nulls into floats,
    and an all-null column has no type; every chunk must carry the same schema)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for f in schema:
        column = table[f.name]
        if pa.types.is_string(f.type) and _is_nested(column.type):
            column = _json_text(column)  # Map, Struct: JSON text (see _feature_arrow_type)
        if column.type != f.type:
            try:
                column = pc.cast(column, f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInput(
                    f"column {f.name}: Feast returned {column.type}, expected {f.type} ({exc})"
                ) from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def training_dataset_run(run: JobRun) -> dict[str, Any]:
    """The worker side: build the dataset of this run (see the module docstring)."""
    dataset = TrainingDataset.objects.get(job_run=run)
    storage = dataset_storage()
    repo = gateway.project_repo(dataset.project)
    upload = run.params.get("upload") or ""
    directory = f"{dataset.project}/{dataset.name}"
    contract = contract_for_vector(
        [(e["feature_view"], e.get("view_alias", ""), e["feature"], e["dtype"]) for e in dataset.contract]
    )
    try:
        if dataset.feature_service:
            job_run_progress(run=run, done=0, total=1, message="checking the service's contract in the registry")
            registry = contract_for_vector(
                [
                    (v.feature_view, v.view_alias, v.feature, v.dtype)
                    for v in gateway.service_vector(repo, feature_service=dataset.feature_service)
                ]
            )
            if registry.hash != contract.hash:
                changes = (
                    "; ".join(f"{c['change']} {c['reference']}" for c in contract_diff(contract, registry))
                    or "entries differ"
                )
                raise InvalidInput(
                    f"the contract of {dataset.feature_service} changed in the registry since the request "
                    f"({contract.hash[:12]} → {registry.hash[:12]}: {changes}); start the job again"
                )
        entity_table = _entity_rows(run=run, dataset=dataset, storage=storage, repo=repo, upload=upload)
        TrainingDataset.objects.filter(pk=dataset.pk).update(entity_rows=entity_table.num_rows)
        job_run_log(run=run, line=f"{entity_table.num_rows:,} entity rows; contract {contract.hash[:12]}")
        built = dataset_build(
            repo=repo,
            storage=storage,
            directory=directory,
            entity_table=entity_table,
            contract=contract,
            feature_service=dataset.feature_service or None,
            features=list(dataset.features),
            join_keys=list(run.params.get("join_keys") or []),
            metadata={
                "dataset": dataset.name,
                "project": dataset.project,
                "feature_service": dataset.feature_service or None,
                "service_version": dataset.service_version,
                "job_run": run.pk,
                "created_at": timezone.now().isoformat(),
            },
            progress=lambda done, total, message: job_run_progress(run=run, done=done, total=total, message=message),
        )
    except BaseException:
        TrainingDataset.objects.filter(pk=dataset.pk).update(
            status=TrainingDataset.Status.FAILED, finished_at=timezone.now()
        )
        if upload:
            storage.delete_file(upload)
        raise
    note = _register_saved_dataset(run=run, dataset=dataset, storage=storage, repo=repo, built=built, contract=contract)
    TrainingDataset.objects.filter(pk=dataset.pk).update(
        status=TrainingDataset.Status.READY,
        row_count=built.rows,
        columns=built.columns,
        preview=built.preview,
        min_event_timestamp=built.min_event_timestamp,
        max_event_timestamp=built.max_event_timestamp,
        storage_uri=storage.uri(directory),
        files=built.files,
        saved_dataset="" if note else dataset.name,
        saved_dataset_note=note[:500],
        finished_at=timezone.now(),
    )
    if upload:
        storage.delete_file(upload)
    audit_record(
        actor=None,
        action="training_dataset.built",
        obj=dataset,
        after={"rows": built.rows, "contract_hash": contract.hash, "storage_uri": storage.uri(directory)},
        job_run_id=run.pk,
    )
    job_run_log(
        run=run, line=f"{built.rows:,} rows written in {built.seconds:.1f} s (Feast {built.feast_seconds:.1f} s)"
    )
    return {
        "dataset": dataset.pk,
        "name": dataset.name,
        "url": dataset.get_absolute_url(),
        "rows": built.rows,
        "contract_hash": contract.hash,
        "min_event_timestamp": _iso(built.min_event_timestamp),
        "max_event_timestamp": _iso(built.max_event_timestamp),
        "storage_uri": storage.uri(directory),
        "files": built.files,
        "saved_dataset": "" if note else dataset.name,
        "saved_dataset_note": note,
        "seconds": round(built.seconds, 3),
        "feast_seconds": round(built.feast_seconds, 3),
    }


def _entity_rows(*, run: JobRun, dataset: TrainingDataset, storage: DatasetStorage, repo: Any, upload: str) -> Any:
    import pyarrow.parquet as pq

    if upload:
        job_run_progress(run=run, done=0, total=1, message="reading the entity rows")
        with storage.open_input(upload) as handle:
            return pq.read_table(handle)
    stamps = [datetime.fromisoformat(t) for t in dataset.entity_timestamps]
    views = list(run.params.get("entity_views") or [])
    job_run_progress(
        run=run, done=0, total=1, message=f"finding every entity of {', '.join(views)} at {len(stamps)} time(s)"
    )
    table = gateway.entity_keys_at(repo, views=views, timestamps=stamps)
    if table.num_rows == 0:
        raise InvalidInput(f"no entity of {', '.join(views)} has a value at the given time(s): nothing to build")
    if table.num_rows > settings.PORTAL_TRAINING_MAX_ENTITY_ROWS:
        raise InvalidInput(
            f"{table.num_rows:,} entity rows at these times; at most {settings.PORTAL_TRAINING_MAX_ENTITY_ROWS:,}"
        )
    return table


def _register_saved_dataset(
    *, run: JobRun, dataset: TrainingDataset, storage: DatasetStorage, repo: Any, built: BuildResult, contract: Contract
) -> str:
    """Register the parquet as a Feast saved dataset; returns why not ("" when registered)."""
    join_keys = [c["name"] for c in built.columns if c["role"] == "join_key"]
    try:
        note = gateway.saved_dataset_register(
            repo,
            name=dataset.name,
            features=contract.references,
            join_keys=join_keys,
            uri=storage.uri(dataset.project, dataset.name, "data.parquet"),
            s3_endpoint_override=storage.endpoint or None,
            feature_service=dataset.feature_service or None,
            tags={"portal_dataset": str(dataset.pk), "contract_hash": contract.hash},
            min_event_timestamp=built.min_event_timestamp,
            max_event_timestamp=built.max_event_timestamp,
            description=f"Training dataset built by the Feature Portal (job {run.pk}).",
        )
    except PortalError as exc:  # the files are written and valid: record why Feast does not know them
        note = f"not registered with Feast: {exc}"
    if note:
        job_run_log(run=run, line=f"no Feast saved dataset: {note}")
    return note


def parse_timestamps_text(text: str) -> list[str]:
    """Timestamps typed one per line (or comma-separated) in the browser form."""
    return [t.strip() for line in text.splitlines() for t in line.split(",") if t.strip()]


# --- Reading a dataset's files -------------------------------------------------------------------------------

DOWNLOADS = {
    "parquet": ("data.parquet", "application/vnd.apache.parquet", "parquet"),
    "csv": ("data.csv", "text/csv", "csv"),
    "contract": ("contract.json", "application/json", "contract.json"),
}


@dataclass(frozen=True)
class DatasetFile:
    """An open dataset file to stream to a client."""

    handle: Any
    filename: str
    content_type: str
    size: int | None


def training_dataset_open(*, actor: Any, dataset: TrainingDataset, fmt: str) -> DatasetFile:
    """Open one of a ready dataset's files for download (permission-checked and audited)."""
    from jobs.permissions import can_read_training_dataset_rows

    if not can_read_training_dataset_rows(actor, dataset):
        raise NotPermitted("only the dataset's creator, operators and the owning team may download its rows")
    if fmt not in DOWNLOADS:
        raise InvalidInput(f"unknown file {fmt!r}: one of {', '.join(DOWNLOADS)}", {"file": list(DOWNLOADS)})
    if dataset.status != TrainingDataset.Status.READY or fmt not in (dataset.files or {}):
        raise ObjectNotFound(f"training dataset {dataset.name} has no {fmt} file")
    name, content_type, extension = DOWNLOADS[fmt]
    storage = dataset_storage(url=dataset.storage_uri)
    size = storage.size(name)
    if size is None:
        raise ObjectNotFound(f"{dataset.storage_uri}/{name} is no longer in the dataset storage")
    audit_record(actor=actor, action="training_dataset.downloaded", obj=dataset, after={"file": fmt})
    return DatasetFile(_Stream(storage.open_input(name)), f"{dataset.name}.{extension}", content_type, size)


class _Stream(io.RawIOBase):
    """A pyarrow file as a plain Python stream (WSGI servers set attributes on what they stream)."""

    def __init__(self, handle: Any) -> None:
        super().__init__()
        self.handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.handle.close()
        super().close()


def training_datasets_reconcile() -> int:
    """Datasets whose job ended without them (the worker died; the sweeper failed the job) are marked
    failed and their files and upload removed, so nothing partial stays behind. Returns how many."""
    stale = list(
        TrainingDataset.objects.filter(
            status=TrainingDataset.Status.BUILDING, job_run__status__in=JobRun.TERMINAL
        ).select_related("job_run")
    )
    if not stale:
        return 0
    storage = dataset_storage()
    for dataset in stale:
        try:
            storage.delete_dir(dataset.project, dataset.name)
            if dataset.job_run.params.get("upload"):
                storage.delete_file(dataset.job_run.params["upload"])
        except PortalError as exc:  # storage down: the next sweep retries
            logger.warning("could not clean up training dataset %s: %s", dataset.pk, exc)
            continue
        TrainingDataset.objects.filter(pk=dataset.pk, status=TrainingDataset.Status.BUILDING).update(
            status=TrainingDataset.Status.FAILED, finished_at=timezone.now()
        )
    return len(stale)
