"""Parse an uploaded feature repo (.zip, .tar, .tar.gz of Feast definitions) without trusting it.

`parse_upload` turns an archive into the Feast objects its definitions declare, or raises UploadRejected
with a message for the user. Steps:

1. The archive is checked before anything is extracted: its format from magic bytes, its size, its
   member count and declared uncompressed size, every member's path (relative, no `..`, no drive
   letter, no control characters), type (regular files and directories only) and extension. Then it
   is extracted into a fresh temporary directory, counting the bytes written (headers can lie).
2. The definitions are imported by _parse_worker.py in a separate process, never in the portal's:
   `python -I` (no PYTHON* variables, no user site, no script directory on sys.path), an environment
   built from scratch (no secret of the portal's), its own session (the whole process group is killed
   at the end), limits on address space, CPU time, written file size and core dumps, a wall-clock
   timeout, and stdout/stderr read into bounded buffers. Where the kernel allows it the process also
   gets its own user and network namespaces (no network at all; RLIMIT_NPROC then counts only its
   own processes) and dies with its parent (PR_SET_PDEATHSIG).
3. The worker runs Feast's own parser and writes protos; this side checks them again (they come from
   untrusted code), sets the project, rejects duplicate names and warns about references to objects
   the upload does not declare (a partial upload may use objects already in the registry).

Not enforced here (see the report of the change that added this module): the worker runs as the
portal's user, so the operating system lets it read whatever that user can read; the worker's audit
hook refuses reading other processes' /proc entries, secret mounts and the portal's directories, but
an audit hook is not a security boundary. Without namespaces (a container whose seccomp profile
forbids unshare) the network is blocked only by that hook too.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import json
import logging
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from catalog.exceptions import UploadRejected
from catalog.feast_gateway.base import _feast
from catalog.feast_gateway.protos import _set_project
from catalog.feast_gateway.upload_archive import (
    MB,
    _checked_members,
    _display,
    _extract,
    _Limits,
    _open_archive,
    _remove,
    _size,
)

logger = logging.getLogger(__name__)

WORKER = Path(__file__).resolve().with_name("_parse_worker.py")

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

OUTPUT_KEEP = 64 * 1024  # bytes of the worker's stdout/stderr kept (the tail); the rest is read and dropped
NPROC_LIMIT = 64  # processes + threads, set only inside a fresh user namespace (where it counts only ours)
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


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


def parse_upload(data: bytes, *, filename: str, project: str) -> ParsedRepo:
    """The Feast objects an uploaded feature repo declares, parsed in an isolated process.

    Raises UploadRejected (a user-readable message, no traceback) for every problem: the archive,
    its members, definitions that fail to load, time or memory limits, duplicate names.
    """
    return _parse_upload(data, filename=filename, project=project, limits=_Limits.from_settings())


def _parse_upload(data: bytes, *, filename: str, project: str, limits: _Limits) -> ParsedRepo:
    if not project:
        raise ValueError("project is required")
    started = time.monotonic()
    warnings: list[str] = []
    with _open_archive(data, _display(filename), limits) as archive:
        members = _checked_members(archive, limits, warnings)
        work = Path(tempfile.mkdtemp(prefix="feast-upload-"))
        try:
            repo = work / "repo"
            repo.mkdir()
            extracted = _extract(members, repo, limits)
            result = _run_worker(work, repo, project, limits)
        finally:
            _remove(work)
    parsed = _objects(result, project, extracted, warnings)
    logger.info(
        "parsed upload %s for %s: %d objects from %d files in %.1f s",
        _display(filename),
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


@functools.cache
def _libc() -> Any:
    """libc for unshare/prctl (Linux), resolved in the parent: never dlopen between fork and exec."""
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _ = libc.unshare, libc.prctl
    except (OSError, AttributeError):
        return None
    return libc


def _preexec(limits: _Limits) -> Callable[[], None]:
    """Runs in the child between fork and exec: namespaces if possible, parent-death signal, rlimits."""

    def clamp(which: int, value: int) -> int:
        hard = resource.getrlimit(which)[1]
        return value if hard == resource.RLIM_INFINITY else min(value, hard)

    memory = limits.memory_mb * MB
    rlimits = [
        (resource.RLIMIT_AS, clamp(resource.RLIMIT_AS, memory), clamp(resource.RLIMIT_AS, memory)),
        (
            resource.RLIMIT_CPU,
            clamp(resource.RLIMIT_CPU, limits.cpu_seconds),
            clamp(resource.RLIMIT_CPU, limits.cpu_seconds + 5),
        ),
        (
            resource.RLIMIT_FSIZE,
            clamp(resource.RLIMIT_FSIZE, limits.file_size),
            clamp(resource.RLIMIT_FSIZE, limits.file_size),
        ),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    nproc = clamp(resource.RLIMIT_NPROC, NPROC_LIMIT)
    libc = _libc()

    def preexec() -> None:
        own_user_namespace = False
        if libc is not None:
            # A user namespace needs no privilege where the kernel allows it; root can do a network namespace alone.
            own_user_namespace = libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0
            if not own_user_namespace:
                libc.unshare(_CLONE_NEWNET)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))
        if own_user_namespace:
            # Counted per user and namespace: inside a fresh one it limits only this process tree. Outside, the
            # count is of every process the portal's user runs (on the whole node in a container): not set.
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return preexec


def _worker_env(home: Path) -> dict[str, str]:
    """Built from scratch: nothing of the portal's environment (database URLs, keys, tokens) is passed on."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _read_denied() -> list[str]:
    """Paths the worker's audit hook refuses to read: the portal's code and data, secret mounts."""
    paths = {"/run/secrets", "/var/run/secrets", str(settings.BASE_DIR), str(settings.VAR_DIR)}
    paths.update(str(p) for p in getattr(settings, "FEAST_REPO_PATHS", []))
    for name, value in os.environ.items():
        if name.endswith("_FILE") and value.startswith("/"):
            paths.add(str(Path(value).parent))
    return sorted(paths)


def _run_worker(work: Path, repo: Path, project: str, limits: _Limits) -> _WorkerResult:
    home = work / "home"
    home.mkdir(mode=0o700)
    result = work / "result.jsonl"
    policy = work / "policy.json"
    policy.write_text(json.dumps({"deny_read": _read_denied(), "allow_read": [str(work)]}))
    command = [sys.executable, "-I", str(WORKER), str(repo), str(result), project, str(policy)]
    proc = subprocess.Popen(  # no shell; the argv is ours
        command,
        cwd=repo,
        env=_worker_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_preexec(limits),  # noqa: PLW1509 (it calls setrlimit, unshare, prctl only)
        close_fds=True,
    )
    timed_out, output = _supervise(proc, limits.timeout)
    if timed_out:
        raise UploadRejected(f"parsing took longer than {limits.timeout} s and was stopped (an infinite loop?)")
    parsed = _read_result(result, limits)
    if parsed is not None:
        return parsed
    code = proc.returncode
    tail = output.decode("utf-8", "replace")
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


def _memory_error(limits: _Limits) -> UploadRejected:
    return UploadRejected(f"parsing ran out of memory (limit {limits.memory_mb} MB)")


def _exited(pid: int) -> bool:
    """Whether the process has exited, without reaping it (its pid stays ours until proc.wait())."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _supervise(proc: subprocess.Popen[bytes], timeout: int) -> tuple[bool, bytes]:
    """Wait for the worker at most `timeout` s, reading its output into bounded buffers; then kill its
    whole process group (anything it left behind). Returns (timed out, the tail of stdout + stderr)."""
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    selector = selectors.DefaultSelector()
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)

    def pump(wait: float) -> int:
        """Read what is ready (waiting at most `wait` s); the number of bytes read."""
        total = 0
        for key, _ in selector.select(timeout=wait):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fd)
                continue
            total += len(chunk)
            buffer = buffers[key.fd]
            buffer += chunk
            if len(buffer) > 2 * OUTPUT_KEEP:
                del buffer[:-OUTPUT_KEEP]
        return total

    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while not _exited(proc.pid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if selector.get_map():
                pump(min(remaining, 0.2))
            else:
                time.sleep(min(remaining, 0.05))
        # What is left in the pipes; bounded, as a process the worker left behind may write on.
        drain_until = time.monotonic() + 0.5
        while not timed_out and selector.get_map() and time.monotonic() < drain_until and pump(0):
            pass
    finally:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            logger.error("upload parser %s did not die after SIGKILL", proc.pid)
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    return timed_out, b"".join(bytes(b[-OUTPUT_KEEP:]) for b in buffers.values())


def _read_result(path: Path, limits: _Limits) -> _WorkerResult | None:
    if not path.is_file():
        return None
    if path.stat().st_size > limits.file_size:
        raise UploadRejected("parsing produced a result too large to read")
    try:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
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


def _worker_error(record: dict[str, Any], limits: _Limits) -> UploadRejected:
    kind = record.get("kind")
    if kind == "memory":
        return _memory_error(limits)
    message = _display(str(record.get("message") or ""), 500)
    if kind == "invalid":
        return UploadRejected(f"invalid definitions: {message}")
    if kind == "internal":
        return UploadRejected(f"the definitions could not be parsed: {message}")
    where = ""
    if record.get("file"):
        where = f" in {_display(str(record['file']))}"
        if isinstance(record.get("line"), int):
            where += f" line {record['line']}"
    label = _display(str(record.get("type") or "error"), 80)
    return UploadRejected(f"definitions failed to load: {label}{where}" + (f": {message}" if message else ""))


# --- 3. The objects ------------------------------------------------------------------------------


def _objects(result: _WorkerResult, project: str, extracted: set[str], warnings: list[str]) -> ParsedRepo:
    """Protos checked again on this side (they come from untrusted code), project set, names checked."""
    if not result.header.get("network_isolated", False):
        _warn_no_network_isolation()
    feast = _feast()
    classes = {
        "Entity": feast.Entity,
        "DataSource": feast.DataSource,
        "FeatureView": feast.FeatureView,
        "StreamFeatureView": feast.StreamFeatureView,
        "OnDemandFeatureView": feast.OnDemandFeatureView,
        "FeatureService": feast.FeatureService,
    }
    entries: list[tuple[ParsedObject, Any, str]] = []
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
        line = record.get("line")
        where = f"{record['file']}:{line}" if record.get("file") and isinstance(line, int) else ""
        parsed = ParsedObject(
            kind=kind, proto_type=proto_type, name=name, proto=message.SerializeToString(deterministic=True)
        )
        entries.append((parsed, message, _display(where)))
    if not entries:
        raise UploadRejected(
            "invalid definitions: they declare no Feast objects (entities, data sources, feature views or services)"
        )
    _check_duplicates(entries)
    warnings = [*warnings, *(_display(str(w), 300) for w in result.header.get("warnings") or [])]
    warnings += _reference_warnings(entries, project)
    order = {kind: i for i, kind in enumerate(KINDS)}
    objects = sorted((e[0] for e in entries), key=lambda o: (order[o.kind], o.name, o.proto_type))
    files = sorted(f for f in (str(x) for x in result.header.get("files") or []) if f in extracted)
    return ParsedRepo(objects=objects, files=files, warnings=warnings)


@functools.cache
def _warn_no_network_isolation() -> None:
    logger.warning(
        "uploaded definitions are parsed without a network namespace (unshare is not permitted here): "
        "only the worker's audit hook keeps them off the network"
    )


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
