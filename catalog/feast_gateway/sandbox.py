"""Parse an uploaded feature repo (.zip, .tar, .tar.gz of Feast definitions) without trusting it.

`parse_upload` turns an archive into the Feast objects its definitions declare, or raises UploadRejected
with a message for the user. Steps:

1. The archive is checked before anything is extracted: its format from magic bytes, its size, its
   member count and declared uncompressed size, every member's path (relative, no `..`, no drive
   letter, no control characters), type (regular files and directories only) and extension. Then it
   is extracted into a fresh temporary directory (0700), counting the bytes written (headers can lie).
2. The definitions are imported by _parse_worker.py in a jail built by the operating system, never in the
   portal's process: a fresh child of the template process, in its own namespaces, filesystem and user,
   under resource limits and a wall-clock timeout (isolation.py says how). The worker's audit hook (PEP 578)
   is a second layer only: it turns the obvious attempts into clear messages, and code that defeats it (it
   runs in the attacker's interpreter) finds nothing behind it. Where the jail cannot be built,
   `isolation_check` says why and every upload is refused (UploadSandboxUnavailable): never a weaker sandbox.
3. The worker runs Feast's own parser and writes protos; this side checks them again (they come from
   untrusted code), sets the project, rejects duplicate names and warns about references to objects
   the upload does not declare (a partial upload may use objects already in the registry).
4. Transformations (UDFs) are stored as their source text alone: the pickled function Feast made in the
   worker is cleared here, and each text is checked in a second, fresh jail (one plain function definition
   that runs alone, the way Feast loads it). See "2b" below.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import signal
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.exceptions import UploadRejected
from catalog.feast_gateway import isolation
from catalog.feast_gateway.base import feast_api
from catalog.feast_gateway.isolation import (
    JAIL_DIR,
    JAIL_OUT,
    JAIL_POLICY,
    JAIL_REPO,
    JAIL_UDFS,
    JAIL_WORKER,
    isolation_check,
)
from catalog.feast_gateway.protos import _set_project, nested_messages, nul_text_fields, udf_messages
from catalog.feast_gateway.upload_archive import (
    UploadLimits,
    _checked_members,
    _extract,
    _open_archive,
    _size,
    printable_name,
    remove_tree,
)

logger = logging.getLogger(__name__)

# Kinds in the order objects are returned (dependencies first), with the proto types each may hold.
KINDS: dict[str, tuple[str, ...]] = {
    "entity": ("Entity",),
    "data_source": ("DataSource",),
    "feature_view": ("FeatureView", "StreamFeatureView", "OnDemandFeatureView"),
    "feature_service": ("FeatureService",),
}
_SINGULAR = {
    "entity": "entity",
    "data_source": "data source",
    "feature_view": "feature view",
    "feature_service": "feature service",
}
_PLURAL = {
    "entity": "entities",
    "data_source": "data sources",
    "feature_view": "feature views",
    "feature_service": "feature services",
}
# Feast's own rule (feature_store._validate_feature_views / _validate_data_sources): view and source names
# must differ ignoring case; entity and service names are compared as written.
_CASE_INSENSITIVE = frozenset({"feature_view", "data_source"})
_DUMMY_ENTITY = "__dummy"  # Feast's placeholder entity of entity-less views


@dataclass(frozen=True)
class ParsedObject:
    kind: str  # "entity" | "data_source" | "feature_view" | "feature_service"
    # "Entity" | "DataSource" | "FeatureView" | "StreamFeatureView" | "OnDemandFeatureView" | "FeatureService"
    proto_type: str
    name: str
    proto: bytes  # the object's Feast proto, SerializeToString(); spec.project / project set to `project`


@dataclass(frozen=True)
class ParsedRepo:
    objects: list[ParsedObject]  # every object the definitions declare, ordered by (kind, name)
    files: list[str]  # the .py files that were parsed (relative paths)
    warnings: list[str]
    udfs: list[ParsedUdf] = field(default_factory=list)  # the transformations (source text only), checked in the jail


def parse_upload(data: bytes, *, filename: str, project: str, repo_path: Path | None = None) -> ParsedRepo:
    """The Feast objects an uploaded feature repo declares, parsed in an isolated process.

    `repo_path` is the governed repo's directory: a file path the definitions build from `__file__` points
    there, as it would under `feast apply` in that repo (in the sandbox `__file__` is under the jail's repo).

    Raises UploadRejected (a user-readable message, no traceback) for every problem: the archive,
    its members, definitions that fail to load, time or memory limits, duplicate names.
    """
    return _parse_upload(
        data, filename=filename, project=project, limits=UploadLimits.from_settings(), repo_path=repo_path
    )


def _parse_upload(
    data: bytes, *, filename: str, project: str, limits: UploadLimits, repo_path: Path | None = None
) -> ParsedRepo:
    if not project:
        raise ValueError("project is required")
    started = time.monotonic()
    warnings: list[str] = []
    with _open_archive(data, printable_name(filename), limits) as archive:
        members = _checked_members(archive, limits, warnings)
        work = Path(tempfile.mkdtemp(prefix="feast-upload-"))
        try:
            repo = work / "repo"
            repo.mkdir()
            extracted = _extract(members, repo, limits)
            _readable_by_sandbox(repo)
            isolation_check()  # refuses every upload where the jail cannot be built: never a weaker sandbox
            result = _run_worker(work, repo, project, limits)
        finally:
            remove_tree(work)
    parsed = _objects(result, project, extracted, warnings, repo_path)
    _check_udfs(parsed.udfs, limits)
    logger.info(
        "parsed upload %s for %s: %d objects from %d files in %.1f s",
        printable_name(filename),
        project,
        len(parsed.objects),
        len(parsed.files),
        time.monotonic() - started,
    )
    return parsed


# --- 2. The worker process -------------------------------------------------------------------------


@dataclass(frozen=True)
class _WorkerResult:
    header: dict[str, Any]
    records: list[dict[str, Any]]


def _readable_by_sandbox(repo: Path) -> None:
    """The copy is extracted 0600/0700; the sandbox's user (nobody) must read it, never write it. The work
    directory around it stays 0700, so only the jail's bind mount reaches it."""
    repo.chmod(0o755)
    for path in repo.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _run_worker(work: Path, repo: Path, project: str, limits: UploadLimits) -> _WorkerResult:
    argv = [JAIL_WORKER, JAIL_REPO, f"{JAIL_OUT}/result.jsonl", project, JAIL_POLICY]
    return _run_jailed(work, argv, [(str(repo), JAIL_REPO)], JAIL_REPO, limits)


def _run_jailed(
    work: Path, argv: list[str], binds: list[tuple[str, str]], cwd: str, limits: UploadLimits, *, mode: str = "call"
) -> _WorkerResult:
    """Run the parser (argv as _parse_worker.main takes it, paths as the jail sees them) in a fresh jail with
    `binds` read-only; its result, or UploadRejected. mode "exec" runs argv as a program instead (a fresh
    interpreter: bench/upload.py measures what the template process saves)."""
    policy = work / "policy.json"
    policy.write_text(json.dumps({"deny_read": isolation.read_denied(), "allow_read": [JAIL_DIR, "/tmp"]}))
    policy.chmod(0o644)  # read by the sandbox's user through its bind mount, whatever the portal's umask
    binds = [(str(isolation.WORKER), JAIL_WORKER), (str(policy), JAIL_POLICY), *binds]
    done = isolation.run(work, argv, binds=binds, cwd=cwd, limits=limits, mode=mode)
    if done.timed_out:
        raise UploadRejected(f"parsing took longer than {limits.timeout} s and was stopped (an infinite loop?)")
    parsed = _read_result(work / "out" / "result.jsonl", limits)
    if parsed is not None:
        return parsed
    code = done.returncode
    tail = done.output.decode("utf-8", "replace")
    logger.warning("upload parser ended without a result (exit %s): %s", code, tail[-2000:])
    if "MemoryError" in tail:
        raise _memory_error(limits)
    if code < 0:
        signum = -code
        if signum == signal.SIGXCPU:
            raise UploadRejected(
                f"parsing used more than {limits.cpu_seconds} s of CPU time and was stopped (an infinite loop?)"
            )
        if signum == signal.SIGXFSZ:
            raise UploadRejected(f"parsing wrote a file larger than {_size(limits.file_size)} and was stopped")
        if signum == signal.SIGKILL:
            raise UploadRejected("parsing was killed (out of memory?)")
        raise UploadRejected(f"parsing crashed ({signal.Signals(signum).name})")
    raise UploadRejected(f"parsing ended without a result (exit code {code})")


def _memory_error(limits: UploadLimits) -> UploadRejected:
    return UploadRejected(f"parsing ran out of memory (limit {limits.memory_mb} MB)")


def _read_result(path: Path, limits: UploadLimits) -> _WorkerResult | None:
    try:  # written by the sandbox's user: never follow a link it left there
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:
        raise UploadRejected("parsing produced an unreadable result") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UploadRejected("parsing produced an unreadable result")
        if info.st_size > limits.file_size:
            raise UploadRejected("parsing produced a result too large to read")
        text = file.read(limits.file_size + 1)
    try:
        lines = [json.loads(line) for line in text.decode("utf-8").splitlines() if line.strip()]
        header = lines[0]
        if not isinstance(header, dict) or not all(isinstance(r, dict) for r in lines):
            raise TypeError("not JSON objects")
    except (ValueError, IndexError, TypeError, UnicodeError):
        raise UploadRejected("parsing produced an unreadable result") from None
    if header.get("status") == "error":
        raise _worker_error(header, limits)
    if header.get("status") != "ok":
        raise UploadRejected("parsing produced an unreadable result")
    return _WorkerResult(header=header, records=lines[1:])


def _worker_error(record: dict[str, Any], limits: UploadLimits) -> UploadRejected:
    kind = record.get("kind")
    if kind == "memory":
        return _memory_error(limits)
    message = printable_name(str(record.get("message") or ""), 500)
    if kind == "invalid":
        return UploadRejected(f"invalid definitions: {message}")
    if kind == "internal":
        return UploadRejected(f"the definitions could not be parsed: {message}")
    where = ""
    if record.get("file"):
        where = f" in {printable_name(str(record['file']))}"
        if isinstance(record.get("line"), int):
            where += f" line {record['line']}"
    label = printable_name(str(record.get("type") or "error"), 80)
    return UploadRejected(f"definitions failed to load: {label}{where}" + (f": {message}" if message else ""))


# --- 2b. Transformations (UDFs) ----------------------------------------------------------------
#
# Feast stores a UDF twice: its source text (body_text) and a dill pickle of the function object (body). Feast
# 0.67 runs the text (udf_rehydrate.resolve_udf) and unpickles the body only when the text fails, and the
# pickle is made by the uploaded code itself, so it can be anything. Reviewers read the text. So every uploaded
# UDF is stored with its text alone (the body is cleared here, on the portal's side: nothing the upload's
# process says is trusted), and the text must compile and define its function on its own, in the namespace
# Feast gives it, checked in a fresh jail that runs nothing but that text. Whatever Feast later runs is the
# text the reviewers approved, and no worker ever unpickles a function from an upload.


@dataclass(frozen=True)
class ParsedUdf:
    kind: str  # the object's kind ("feature_view")
    view: str  # the object's name
    name: str  # the function's name
    source: str  # body_text, exactly as stored


def _strip_udf_bodies(message: Any, kind: str, name: str) -> list[ParsedUdf]:
    """Clear every pickled UDF body in an uploaded object; refuse a UDF that has no source text to review."""
    udfs = []
    for udf in udf_messages(message):
        if not udf.body_text.strip():
            if udf.body:
                raise UploadRejected(
                    f"invalid definitions: {_SINGULAR[kind]} '{name}' has a transformation without source text "
                    "(only a pickled function, which cannot be reviewed)"
                )
            continue
        udf.ClearField("body")
        udfs.append(ParsedUdf(kind=kind, view=name, name=udf.name, source=udf.body_text))
    return udfs


def _check_udfs(udfs: list[ParsedUdf], limits: UploadLimits) -> None:
    """Each UDF's source text compiles and defines its function alone, as Feast will run it (in a fresh jail)."""
    if not udfs:
        return
    work = Path(tempfile.mkdtemp(prefix="feast-upload-udf-"))
    try:
        udf_file = work / "udfs.json"
        udf_file.write_text(json.dumps([{"name": u.name, "source": u.source} for u in udfs]))
        udf_file.chmod(0o644)
        argv = [JAIL_WORKER, "--udf", JAIL_UDFS, f"{JAIL_OUT}/result.jsonl", JAIL_POLICY]
        result = _run_jailed(work, argv, [(str(udf_file), JAIL_UDFS)], "/tmp", limits)
    finally:
        remove_tree(work)
    errors = {r.get("index"): r.get("error") for r in result.records if isinstance(r.get("index"), int)}
    if set(errors) != set(range(len(udfs))):
        raise UploadRejected("checking the transformations produced an unreadable result")
    for index, udf in enumerate(udfs):
        error = errors[index]
        if error:
            raise UploadRejected(
                f"invalid definitions: the transformation '{printable_name(udf.name, 80)}' of {_SINGULAR[udf.kind]} "
                f"'{udf.view}' does not run on its own ({printable_name(str(error), 300)}): Feast runs its source text alone, "
                "so it must define the function without the rest of its file"
            )


# --- 3. The objects ------------------------------------------------------------------------------


def _objects(
    result: _WorkerResult, project: str, extracted: set[str], warnings: list[str], repo_path: Path | None = None
) -> ParsedRepo:
    """Protos checked again on this side (they come from untrusted code), project set, names checked."""
    feast = feast_api()
    classes = {
        "Entity": feast.Entity,
        "DataSource": feast.DataSource,
        "FeatureView": feast.FeatureView,
        "StreamFeatureView": feast.StreamFeatureView,
        "OnDemandFeatureView": feast.OnDemandFeatureView,
        "FeatureService": feast.FeatureService,
    }
    entries: list[tuple[ParsedObject, Any, str]] = []
    udfs: list[ParsedUdf] = []
    for record in result.records:
        try:
            kind, proto_type, name = str(record["kind"]), str(record["proto_type"]), str(record["name"])
            if proto_type not in KINDS.get(kind, ()):
                raise ValueError(f"{kind}/{proto_type}")
            message = classes[proto_type]()
            message.ParseFromString(base64.b64decode(record["proto"], validate=True))
        except (KeyError, ValueError, TypeError, binascii.Error, feast.DecodeError):
            raise UploadRejected("parsing produced an unreadable result") from None
        spec = message.spec if "spec" in message.DESCRIPTOR.fields_by_name else message
        if spec.name != name:
            raise UploadRejected("parsing produced an unreadable result")
        _set_project(message, project)
        if repo_path is not None:
            _relocate_file_paths(message, repo_path)
        udfs += _strip_udf_bodies(message, kind, name)
        line = record.get("line")
        where = f"{record['file']}:{line}" if record.get("file") and isinstance(line, int) else ""
        nul = nul_text_fields(message)
        if nul:
            at = f" ({printable_name(where)})" if where else ""
            raise UploadRejected(
                f"invalid definitions: {kind.replace('_', ' ')} '{printable_name(name)}'{at}: its "
                f"{', '.join(nul[:5])} hold a NUL character (\\x00), which the registry cannot store; remove it"
            )
        parsed = ParsedObject(
            kind=kind, proto_type=proto_type, name=name, proto=message.SerializeToString(deterministic=True)
        )
        entries.append((parsed, message, printable_name(where)))
    if not entries:
        raise UploadRejected(
            "invalid definitions: they declare no Feast objects (entities, data sources, feature views or services)"
        )
    _check_duplicates(entries)
    warnings = [*warnings, *(printable_name(str(w), 300) for w in result.header.get("warnings") or [])]
    warnings += _reference_warnings(entries, project)
    order = {kind: i for i, kind in enumerate(KINDS)}
    objects = sorted((e[0] for e in entries), key=lambda o: (order[o.kind], o.name, o.proto_type))
    files = sorted(f for f in (str(x) for x in result.header.get("files") or []) if f in extracted)
    return ParsedRepo(objects=objects, files=files, warnings=warnings, udfs=udfs)


def _relocate_file_paths(message: Any, repo_path: Path) -> None:
    """File sources whose path is inside the jail's repo (built from `__file__`) point into the governed repo."""
    for source in nested_messages(message):
        if source.DESCRIPTOR.full_name == "feast.core.DataSource" and source.HasField("file_options"):
            uri = source.file_options.uri
            if uri == JAIL_REPO or uri.startswith(f"{JAIL_REPO}/"):
                source.file_options.uri = str(repo_path) + uri[len(JAIL_REPO) :]


def _check_duplicates(entries: list[tuple[ParsedObject, Any, str]]) -> None:
    groups: dict[tuple[str, str], list[tuple[ParsedObject, str]]] = {}
    for obj, _, where in entries:
        key = obj.name.lower() if obj.kind in _CASE_INSENSITIVE else obj.name
        groups.setdefault((obj.kind, key), []).append((obj, where))
    for (kind, _), group in groups.items():
        if len(group) < 2:
            continue
        count = "two" if len(group) == 2 else str(len(group))
        names = sorted({obj.name for obj, _ in group})
        places = [w for _, w in group if w]
        at = f" ({', '.join(places)})" if places else ""
        if len(names) == 1:
            raise UploadRejected(f"invalid definitions: {count} {_PLURAL[kind]} are named '{names[0]}'{at}")
        shown = " and ".join(f"'{n}'" for n in names)
        raise UploadRejected(
            f"invalid definitions: {count} {_PLURAL[kind]} are named {shown}{at}: Feast needs their names to differ "
            "ignoring case"
        )


def _reference_warnings(entries: list[tuple[ParsedObject, Any, str]], project: str) -> list[str]:
    """References to objects the upload does not declare: fine for a partial upload if they already exist."""
    declared: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for obj, _, _ in entries:
        declared[obj.kind].add(obj.name)
    warnings = []

    def missing(user: ParsedObject, kind: str, name: str) -> None:
        if name and name not in declared[kind] and name != _DUMMY_ENTITY:
            warnings.append(
                f"{_SINGULAR[user.kind]} '{user.name}' uses {_SINGULAR[kind]} '{name}', which this upload does not declare: "
                f"it must already exist in project '{project}'"
            )

    for obj, message, _ in entries:
        if obj.proto_type in ("FeatureView", "StreamFeatureView"):
            for entity in message.spec.entities:
                missing(obj, "entity", entity)
        elif obj.proto_type == "OnDemandFeatureView":
            for source in message.spec.sources.values():
                if source.HasField("feature_view"):
                    missing(obj, "feature_view", source.feature_view.spec.name)
                elif source.HasField("feature_view_projection"):
                    missing(obj, "feature_view", source.feature_view_projection.feature_view_name)
        elif obj.proto_type == "FeatureService":
            for projection in message.spec.features:
                missing(obj, "feature_view", projection.feature_view_name)
    return sorted(set(warnings))
