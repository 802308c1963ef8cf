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
import gzip
import io
import json
import logging
import os
import re
import resource
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

from django.conf import settings

from catalog.exceptions import UploadRejected
from catalog.feast_gateway.base import _feast
from catalog.feast_gateway.protos import _set_project

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

MB = 1024 * 1024
WORKER = Path(__file__).resolve().with_name("_parse_worker.py")

ALLOWED_SUFFIXES = frozenset({".py", ".yaml", ".yml", ".md", ".txt", ".json", ".sql"})
ALLOWED_NAMES = frozenset({".feastignore", ".gitignore"})  # .feastignore is read by Feast's parser
COMPILED_SUFFIXES = frozenset({".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll"})
IGNORED_DIRS = frozenset({"__pycache__", "__MACOSX"})  # bytecode caches, macOS resource forks: skipped
IGNORED_NAMES = frozenset({".DS_Store"})

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


@dataclass(frozen=True)
class _Limits:
    max_bytes: int
    max_files: int
    max_uncompressed: int
    timeout: int
    memory_mb: int

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None = None) -> _Limits:
        """The GOVERNANCE_UPLOAD_* / GOVERNANCE_PARSE_* settings (overrides: setting name -> value)."""

        def get(name: str, default: int) -> int:
            if overrides and name in overrides:
                return int(overrides[name])
            return int(getattr(settings, name, default))

        return cls(
            max_bytes=get("GOVERNANCE_UPLOAD_MAX_BYTES", 5 * MB),
            max_files=get("GOVERNANCE_UPLOAD_MAX_FILES", 500),
            max_uncompressed=get("GOVERNANCE_UPLOAD_MAX_UNCOMPRESSED", 20 * MB),
            timeout=get("GOVERNANCE_PARSE_TIMEOUT_SECONDS", 60),
            memory_mb=get("GOVERNANCE_PARSE_MEMORY_MB", 2048),
        )

    @property
    def file_size(self) -> int:
        """RLIMIT_FSIZE of the worker: room for its result (protos of at most max_uncompressed of code)."""
        return max(64 * MB, 3 * self.max_uncompressed)

    @property
    def cpu_seconds(self) -> int:
        """RLIMIT_CPU: a backstop for the wall-clock timeout (threads can use CPU faster than wall time)."""
        return 2 * self.timeout


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


def _rejected(message: str) -> UploadRejected:
    return UploadRejected(f"upload rejected: {message}")


def _display(name: str, limit: int = 120) -> str:
    """A member or file name fit for a message: printable, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: int) -> str:
    if n % MB == 0:
        return f"{n // MB} MB"
    if n >= MB:
        return f"{n / MB:.1f} MB"
    return f"{n} bytes"


# --- 1. The archive --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    raw_name: str
    kind: str  # "file", "dir", or why it is refused: "symlink", "hardlink", "device", "fifo", "special", "sparse"
    size: int
    open: Callable[[], IO[bytes]]
    encrypted: bool = False


@dataclass(frozen=True)
class _Archive:
    format: str
    members: list[_Member]


_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    UnicodeError,
    OSError,
)


@contextmanager
def _open_archive(data: bytes, filename: str, limits: _Limits) -> Iterator[_Archive]:
    """The archive's members, from its headers alone (nothing is extracted)."""
    if not data:
        raise _rejected(f"'{filename}' is empty")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        fmt = "zip"
    elif data[:2] == b"\x1f\x8b":
        fmt = "tar.gz"
    elif data[257:262] == b"ustar" or (len(data) >= 1024 and len(data) % 512 == 0 and not data.strip(b"\0")):
        fmt = "tar"  # a tar without members is only zero blocks
    else:
        raise _rejected(f"'{filename}' is not a .zip, .tar or .tar.gz archive")
    if len(data) > limits.max_bytes:
        raise _rejected(f"the archive is larger than {_size(limits.max_bytes)}")
    if fmt == "zip":
        declared = _zip_declared_count(data)
        if declared is not None and declared > limits.max_files:
            raise _rejected(f"the archive has more than {limits.max_files} members")
        with _corrupt_guard(lambda: zipfile.ZipFile(io.BytesIO(data))) as zf:
            yield _Archive(fmt, [_zip_member(zf, info) for info in zf.infolist()])
        return
    raw = _corrupt_guard(lambda: _gunzip(data, limits)) if fmt == "tar.gz" else data
    if fmt == "tar.gz" and raw[257:262] != b"ustar" and raw.strip(b"\0"):
        raise _rejected(f"'{filename}' is gzip-compressed but not a .tar.gz archive")
    with _corrupt_guard(lambda: tarfile.open(fileobj=io.BytesIO(raw), mode="r:")) as tf:
        yield _Archive(fmt, _corrupt_guard(lambda: _tar_members(tf, limits)))


def _corrupt_guard(read: Callable[[], _T]) -> _T:
    """read(), with the errors of a malformed archive turned into a rejection."""
    try:
        return read()
    except UploadRejected:
        raise
    except _CORRUPT as exc:
        raise _rejected(f"the archive is corrupt ({_display(str(exc), 200)})") from None


def _zip_declared_count(data: bytes) -> int | None:
    """The member count the zip's end-of-central-directory record declares (read before parsing it)."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd < 0 or eocd + 22 > len(data):
        return None
    count = int(struct.unpack_from("<H", data, eocd + 10)[0])
    locator = eocd - 20
    if count == 0xFFFF and locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        offset = int(struct.unpack_from("<Q", data, locator + 8)[0])
        if data[offset : offset + 4] == b"PK\x06\x06" and offset + 40 <= len(data):
            count = int(struct.unpack_from("<Q", data, offset + 32)[0])
    return count


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        kind = "symlink"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "device"
    elif stat.S_ISFIFO(mode):
        kind = "fifo"
    elif stat.S_ISSOCK(mode):
        kind = "special"
    else:
        kind = "dir" if info.is_dir() else "file"
    return _Member(
        raw_name=info.orig_filename,
        kind=kind,
        size=info.file_size,
        open=lambda: zf.open(info),
        encrypted=bool(info.flag_bits & 0x1),
    )


def _gunzip(data: bytes, limits: _Limits) -> bytes:
    """The tar inside a .tar.gz, decompressed no further than the largest tar the limits allow."""
    bound = limits.max_uncompressed + 4 * 512 * limits.max_files + 20 * 1024  # data + headers and padding
    with io.BytesIO(data) as compressed, gzip.GzipFile(fileobj=compressed) as gz:
        raw = gz.read(bound + 1)
    if len(raw) > bound:
        raise _rejected(f"the archive expands to more than {_size(limits.max_uncompressed)}")
    return bytes(raw)


def _tar_members(tf: tarfile.TarFile, limits: _Limits) -> list[_Member]:
    members: list[_Member] = []
    while (info := tf.next()) is not None:
        if len(members) >= limits.max_files:
            raise _rejected(f"the archive has more than {limits.max_files} members")
        if info.issparse():
            kind = "sparse"
        elif info.isreg():
            kind = "file"
        elif info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        elif info.ischr() or info.isblk():
            kind = "device"
        elif info.isfifo():
            kind = "fifo"
        else:
            kind = "special"
        members.append(
            _Member(raw_name=info.name, kind=kind, size=info.size, open=functools.partial(_tar_open, tf, info))
        )
    return members


def _tar_open(tf: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    stream = tf.extractfile(info)
    if stream is None:
        raise tarfile.TarError(f"cannot read {info.name}")
    return stream


_KIND_MESSAGES = {
    "symlink": "is a symbolic link",
    "hardlink": "is a hard link",
    "device": "is a device file",
    "fifo": "is a FIFO (named pipe)",
    "special": "is not a regular file",
    "sparse": "is a sparse file",
}


def _member_path(raw: str) -> str:
    """The member's normalised relative path ("" for the archive root); rejects unsafe names."""
    shown = _display(raw)
    if "\x00" in raw:
        raise _rejected(f"member '{shown}' has a NUL byte in its name")
    if not raw or not raw.isprintable():
        raise _rejected(f"member '{shown}' has control characters or invalid text in its name")
    if len(raw) > 1024:
        raise _rejected(f"member '{shown}' has a name longer than 1024 characters")
    name = raw.replace("\\", "/")
    if name.startswith("/"):
        raise _rejected(f"member '{shown}' is an absolute path")
    if re.match(r"[A-Za-z]:", name):
        raise _rejected(f"member '{shown}' starts with a drive letter")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        depth = 0
        for part in parts:
            depth += -1 if part == ".." else 1
            if depth < 0:
                raise _rejected(f"member '{shown}' escapes the archive")
        raise _rejected(f"member '{shown}' has a '..' component")
    return "/".join(parts)


@dataclass(frozen=True)
class _Checked:
    path: str
    member: _Member


def _checked_members(archive: _Archive, limits: _Limits, warnings: list[str]) -> list[_Checked]:
    """Every member checked (path, type, extension), the count and declared sizes: nothing written yet."""
    if len(archive.members) > limits.max_files:
        raise _rejected(f"the archive has more than {limits.max_files} members")
    if not archive.members:
        raise _rejected("the archive is empty")
    checked: list[_Checked] = []
    seen: set[str] = set()
    ignored = 0
    declared = 0
    for member in archive.members:
        path = _member_path(member.raw_name)
        shown = _display(path or member.raw_name)
        if member.kind in _KIND_MESSAGES:
            raise _rejected(f"'{shown}' {_KIND_MESSAGES[member.kind]}")
        if member.encrypted:
            raise _rejected(f"'{shown}' is encrypted")
        if not path:
            continue
        parts = path.split("/")
        if any(p in IGNORED_DIRS for p in parts) or parts[-1] in IGNORED_NAMES:
            ignored += 1
            continue
        if path in seen:
            raise _rejected(f"member '{shown}' appears twice")
        seen.add(path)
        if member.kind == "file":
            suffix = PurePosixPath(path).suffix.lower()
            if suffix in COMPILED_SUFFIXES:
                raise _rejected(f"'{shown}' is compiled code, which cannot be reviewed (upload the .py source)")
            if suffix not in ALLOWED_SUFFIXES and parts[-1] not in ALLOWED_NAMES:
                allowed = ", ".join(sorted(ALLOWED_SUFFIXES))
                raise _rejected(f"'{shown}' is not an allowed file type (allowed: {allowed})")
            if suffix == ".py" and any("." in p for p in [*parts[:-1], parts[-1][: -len(".py")]]):
                raise _rejected(f"'{shown}': a Python file cannot be imported from a name with a '.' in it")
            declared += member.size
            if declared > limits.max_uncompressed:
                raise _rejected(f"the archive expands to more than {_size(limits.max_uncompressed)}")
        checked.append(_Checked(path, member))
    if ignored:
        warnings.append(f"ignored {ignored} member(s) under __pycache__/ or __MACOSX/, or .DS_Store files")
    tops = {c.path.split("/")[0] for c in checked}
    if len(tops) == 1 and all("/" in c.path or c.member.kind == "dir" for c in checked):
        # A zipped folder (`zip -r repo.zip feature_repo/`): `feast apply` runs inside it, so it is the repo root.
        top = tops.pop()
        checked = [_Checked(c.path[len(top) + 1 :], c.member) for c in checked if c.path != top]
        warnings.append(f"every file is under '{_display(top)}/': that directory was parsed as the repo root")
    if not any(c.member.kind == "file" and c.path.endswith(".py") for c in checked):
        raise _rejected("the archive has no Python (.py) files")
    return checked


def _extract(members: list[_Checked], repo: Path, limits: _Limits) -> set[str]:
    """Write the members under repo, counting the bytes (a header may understate a member's size)."""
    written = 0
    files: set[str] = set()
    for checked in members:
        dest = repo.joinpath(*checked.path.split("/"))
        try:
            if checked.member.kind == "dir":
                dest.mkdir(mode=0o700, parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _rejected(f"member '{_display(checked.path)}' cannot be extracted ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as out, checked.member.open() as src:
                while chunk := src.read(64 * 1024):
                    written += len(chunk)
                    if written > limits.max_uncompressed:
                        raise _rejected(f"the archive expands to more than {_size(limits.max_uncompressed)}")
                    out.write(chunk)
        except UploadRejected:
            raise
        except _CORRUPT as exc:
            raise _rejected(
                f"the archive is corrupt (member '{_display(checked.path)}': {_display(str(exc), 200)})"
            ) from None
        files.add(checked.path)
    return files


def _remove(path: Path) -> None:
    def retry(func: Callable[..., Any], target: str, _exc: Any) -> None:
        try:  # a directory the worker made unreadable
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            logger.warning("could not remove %s", target)

    shutil.rmtree(path, onerror=retry)


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
