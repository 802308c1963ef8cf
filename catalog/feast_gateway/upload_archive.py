"""The archive side of the upload sandbox: limits, and every check made before and while extracting.

An uploaded .zip / .tar / .tar.gz is opened from its magic bytes and checked member by member (path,
type, extension, declared and actual sizes) before anything is written; then it is extracted into a
directory, counting the bytes written (headers can lie). catalog.feast_gateway.sandbox runs the rest.
"""

from __future__ import annotations

import functools
import gzip
import io
import logging
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

from django.conf import settings

from catalog.exceptions import UploadRejected

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

MB = 1024 * 1024

# What is extracted for the parse; other files (data, notebooks, images) are skipped, listed and never extracted.
ALLOWED_SUFFIXES = frozenset({".py", ".yaml", ".yml", ".md", ".txt", ".json", ".sql"})
ALLOWED_NAMES = frozenset({".feastignore", ".gitignore"})  # .feastignore is read by Feast's parser
COMPILED_SUFFIXES = frozenset({".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll"})
IGNORED_DIRS = frozenset({"__pycache__", "__MACOSX"})  # bytecode caches, macOS resource forks: skipped
IGNORED_NAMES = frozenset({".DS_Store"})


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_files: int
    max_uncompressed: int
    timeout: int
    memory_mb: int

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None = None) -> UploadLimits:
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


def _rejected(message: str) -> UploadRejected:
    return UploadRejected(f"upload rejected: {message}")


def printable_name(name: str, limit: int = 120) -> str:
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
def _open_archive(data: bytes, filename: str, limits: UploadLimits) -> Iterator[_Archive]:
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
        raise _rejected(f"the archive is corrupt ({printable_name(str(exc), 200)})") from None


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


def _gunzip(data: bytes, limits: UploadLimits) -> bytes:
    """The tar inside a .tar.gz, decompressed no further than the largest tar the limits allow."""
    bound = limits.max_uncompressed + 4 * 512 * limits.max_files + 20 * 1024  # data + headers and padding
    with io.BytesIO(data) as compressed, gzip.GzipFile(fileobj=compressed) as gz:
        raw = gz.read(bound + 1)
    if len(raw) > bound:
        raise _rejected(f"the archive expands to more than {_size(limits.max_uncompressed)}")
    return bytes(raw)


def _tar_members(tf: tarfile.TarFile, limits: UploadLimits) -> list[_Member]:
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
    shown = printable_name(raw)
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


def _checked_members(archive: _Archive, limits: UploadLimits, warnings: list[str]) -> list[_Checked]:
    """Every member checked (path, type, extension), the count and declared sizes: nothing written yet."""
    if len(archive.members) > limits.max_files:
        raise _rejected(f"the archive has more than {limits.max_files} members")
    if not archive.members:
        raise _rejected("the archive is empty")
    checked: list[_Checked] = []
    seen: set[str] = set()
    skipped: list[str] = []
    ignored = 0
    declared = 0
    for member in archive.members:
        path = _member_path(member.raw_name)
        shown = printable_name(path or member.raw_name)
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
                skipped.append(path)  # data, notebooks, images...: Feast never imports them; never extracted
                continue
            if suffix == ".py" and any("." in p for p in [*parts[:-1], parts[-1][: -len(".py")]]):
                raise _rejected(f"'{shown}': a Python file cannot be imported from a name with a '.' in it")
            declared += member.size
            if declared > limits.max_uncompressed:
                raise _rejected(f"the archive expands to more than {_size(limits.max_uncompressed)}")
        checked.append(_Checked(path, member))
    if ignored:
        warnings.append(f"ignored {ignored} member(s) under __pycache__/ or __MACOSX/, or .DS_Store files")
    if skipped:
        listed = ", ".join(f"'{printable_name(p, 80)}'" for p in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        warnings.append(f"skipped {len(skipped)} file(s) Feast does not import (not extracted): {listed}{more}")
    tops = {c.path.split("/")[0] for c in checked}
    if len(tops) == 1 and all("/" in c.path or c.member.kind == "dir" for c in checked):
        # A zipped folder (`zip -r repo.zip feature_repo/`): `feast apply` runs inside it, so it is the repo root.
        top = tops.pop()
        checked = [_Checked(c.path[len(top) + 1 :], c.member) for c in checked if c.path != top]
        if not any(c.path == "feature_store.yaml" for c in checked):  # else the usual zipped repo folder
            warnings.append(f"every file is under '{printable_name(top)}/': that directory was parsed as the repo root")
    if not any(c.member.kind == "file" and c.path.endswith(".py") for c in checked):
        raise _rejected("the archive has no Python (.py) files")
    return checked


def check_archive(data: bytes, *, filename: str) -> None:
    """The checks made before anything is extracted (format, size, members, paths, types, declared sizes): what
    the web tier checks of an upload before a worker parses it. Raises UploadRejected, as the parse would."""
    limits = UploadLimits.from_settings()
    with _open_archive(data, printable_name(filename), limits) as archive:
        _checked_members(archive, limits, [])


def _extract(members: list[_Checked], repo: Path, limits: UploadLimits) -> set[str]:
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
            raise _rejected(f"member '{printable_name(checked.path)}' cannot be extracted ({exc.strerror})") from None
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
                f"the archive is corrupt (member '{printable_name(checked.path)}': {printable_name(str(exc), 200)})"
            ) from None
        files.add(checked.path)
    return files


def remove_tree(path: Path) -> None:
    def retry(func: Callable[..., Any], target: str, _exc: Any) -> None:
        try:  # a directory the worker made unreadable
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            logger.warning("could not remove %s", target)

    shutil.rmtree(path, onerror=retry)
