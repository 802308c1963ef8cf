"""Hostile uploads for catalog.feast_gateway.sandbox.parse_upload, shared by its tests and API-level tests.

Each HostileCase builds (archive bytes, filename) in a directory it may use, and names a substring the
UploadRejected message must contain. `settings` are overrides the case needs (apply them with pytest-django's
`settings` fixture); `stage` says how far the upload gets:

- "archive": refused from the archive's headers, before anything is extracted (no subprocess; instant);
- "extract": refused while extracting (no subprocess);
- "parse": the definitions are imported in the sandbox's subprocess (~4 s each: the subprocess imports feast).

Builders are cheap: the 1 GB archive is a 1 MB zip bomb assembled from one precomputed deflate block, the
100,000-member zip is written in about a second, and no builder allocates more than 25 MB.
"""

from __future__ import annotations

import io
import os
import secrets
import site
import stat
import struct
import sys
import tarfile
import textwrap
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HostileCase:
    id: str
    build: Callable[[Path], tuple[bytes, str]]
    message: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    stage: str = "parse"  # "archive" | "extract" | "parse"


# --- Archive builders ------------------------------------------------------------------------------


def zip_bytes(files: Mapping[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(zipfile.ZipInfo(name), content.encode() if isinstance(content, str) else content)
    return buf.getvalue()


def zip_with(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, content in entries:
            zf.writestr(info, content)
    return buf.getvalue()


def tar_bytes(
    files: Mapping[str, bytes | str] | None = None,
    *,
    special: list[tarfile.TarInfo] | None = None,
    gz: bool = False,
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in (files or {}).items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in special or []:
            tf.addfile(info)
    return buf.getvalue()


def _tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def zip_bomb(name: str, size: int) -> bytes:
    """A zip whose one member inflates to `size` bytes of zeros (a multiple of 1 MB), ~size/1000 compressed.

    The deflate stream is one fully flushed block of 1 MB of zeros repeated (a full flush resets the
    compressor's history, so copies concatenate into a valid stream) and a final empty block.
    """
    mb = 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(mb)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * (size // mb) + compressor.flush(zlib.Z_FINISH)
    crc = 0
    zeros = bytes(mb)
    for _ in range(size // mb):
        crc = zlib.crc32(zeros, crc)
    raw_name = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream), size, len(raw_name), 0)
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0x21,
        crc,
        len(stream),
        size,
        len(raw_name),
        0,
        0,
        0,
        0,
        0o100644 << 16,
        0,
    )
    cd_offset = len(local) + len(raw_name) + len(stream)
    cd_size = len(central) + len(raw_name)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, cd_size, cd_offset, 0)
    return local + raw_name + stream + central + raw_name + end


def many_members_zip(count: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(count):
            zf.writestr(f"{i:06}.py", b"")
    return buf.getvalue()


def lying_zip() -> bytes:
    """A zip whose central directory says a member is 10 bytes long while its data inflates to 1 MB."""
    data = zip_bytes({"features.py": "x = 1\n" + "#" * (1024 * 1024)})
    real = struct.pack("<L", 6 + 1024 * 1024)
    # Patch the uncompressed size in the local header (offset 22) and the central directory (offset 24).
    patched = bytearray(data)
    assert patched[22:26] == real
    patched[22:26] = struct.pack("<L", 10)
    central = data.rfind(b"PK\x01\x02")
    assert patched[central + 24 : central + 28] == real
    patched[central + 24 : central + 28] = struct.pack("<L", 10)
    return bytes(patched)


# --- Definitions ---------------------------------------------------------------------------------

# A small valid repo; cases add one hostile line to it, so the error is about that line only.
BASE = textwrap.dedent(
    """\
    from datetime import timedelta

    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Int64

    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(name="driver_stats_source", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
    driver_stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(days=1),
        schema=[Field(name="trips", dtype=Int64), Field(name="rating", dtype=Float32)],
        source=source,
    )
    """
)


def defs(
    code: str, *, base: bool = True, name: str = "features.py", extra: Mapping[str, str] | None = None
) -> Callable[[Path], tuple[bytes, str]]:
    """A builder: a zip holding `code` (after BASE when base=True) as `name`, plus `extra` files."""

    def build(_: Path) -> tuple[bytes, str]:
        return zip_bytes({name: (BASE + code) if base else code, **(extra or {})}), "definitions.zip"

    return build


# A second file declaring another view named driver_stats (line 8), reusing the first file's entity and source.
SECOND_DRIVER_STATS = textwrap.dedent(
    """\
    from datetime import timedelta

    from feast import FeatureView, Field
    from feast.types import Int64

    from features import driver, source

    driver_stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(days=2),
        schema=[Field(name="trips", dtype=Int64)],
        source=source,
    )
    """
)


def const(data: bytes, filename: str) -> Callable[[Path], tuple[bytes, str]]:
    return lambda _: (data, filename)


def lazy(make: Callable[[], bytes], filename: str) -> Callable[[Path], tuple[bytes, str]]:
    return lambda _: (make(), filename)


_OK = BASE  # a valid definitions file, beside the hostile member


def _zip_symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _tar_device(_: Path) -> tuple[bytes, str]:
    info = _tar_special("dev.py", tarfile.CHRTYPE)
    info.devmajor, info.devminor = 1, 3
    return tar_bytes({"features.py": _OK}, special=[info]), "repo.tar"


HOSTILE_CASES: list[HostileCase] = [
    # --- The archive itself (refused before extracting) ---
    HostileCase(
        "not_an_archive",
        const(b"print('hello')\n", "features.py"),
        "is not a .zip, .tar or .tar.gz archive",
        stage="archive",
    ),
    HostileCase("empty_upload", const(b"", "empty.zip"), "'empty.zip' is empty", stage="archive"),
    HostileCase("empty_zip", lazy(lambda: zip_bytes({}), "empty.zip"), "the archive is empty", stage="archive"),
    HostileCase("empty_tar", lazy(lambda: tar_bytes({}), "empty.tar"), "the archive is empty", stage="archive"),
    HostileCase(
        "corrupt_zip", const(b"PK\x03\x04" + b"\xff" * 200, "broken.zip"), "the archive is corrupt", stage="archive"
    ),
    HostileCase(
        "no_python_files",
        lazy(lambda: zip_bytes({"README.md": "# notes\n", "feature_store.yaml": "project: x\n"}), "docs.zip"),
        "the archive has no Python (.py) files",
        stage="archive",
    ),
    HostileCase(
        "larger_than_limit",
        lazy(lambda: zip_with([(zipfile.ZipInfo("big.txt"), bytes(6 * 1024 * 1024))]), "big.zip"),
        "the archive is larger than 5 MB",
        stage="archive",
    ),
    HostileCase(
        "zip_bomb_1gb",
        lazy(lambda: zip_bomb("features.py", 1024 * 1024 * 1024), "bomb.zip"),
        "the archive expands to more than 20 MB",
        stage="archive",
    ),
    HostileCase(
        "gzip_bomb_tar",
        lazy(lambda: tar_bytes({"features.py": _OK, "padding.txt": bytes(24 * 1024 * 1024)}, gz=True), "bomb.tar.gz"),
        "the archive expands to more than 20 MB",
        stage="archive",
    ),
    HostileCase(
        "100k_members",
        lazy(lambda: many_members_zip(100_000), "many.zip"),
        "the archive has more than 500 members",
        # 100,000 members take 9 MB even empty: raise the size limit so the member count is what refuses it.
        settings={"GOVERNANCE_UPLOAD_MAX_BYTES": 16 * 1024 * 1024},
        stage="archive",
    ),
    # --- Member paths ---
    HostileCase(
        "zip_slip",
        lazy(lambda: zip_bytes({"features.py": _OK, "../x.py": "print('escaped')\n"}), "slip.zip"),
        "member '../x.py' escapes the archive",
        stage="archive",
    ),
    HostileCase(
        "zip_slip_passwd",
        lazy(lambda: zip_bytes({"features.py": _OK, "../../etc/passwd": "root::0:0::/:/bin/sh\n"}), "slip.zip"),
        "member '../../etc/passwd' escapes the archive",
        stage="archive",
    ),
    HostileCase(
        "tar_slip_nested",
        lazy(lambda: tar_bytes({"features.py": _OK, "sub/../../x.py": "x = 1\n"}), "slip.tar"),
        "member 'sub/../../x.py' escapes the archive",
        stage="archive",
    ),
    HostileCase(
        "absolute_path_zip",
        lazy(lambda: zip_bytes({"features.py": _OK, "/etc/cron.d/x.py": "x = 1\n"}), "abs.zip"),
        "member '/etc/cron.d/x.py' is an absolute path",
        stage="archive",
    ),
    HostileCase(
        "absolute_path_tar",
        lazy(lambda: tar_bytes({"features.py": _OK, "/tmp/x.py": "x = 1\n"}), "abs.tar"),
        "member '/tmp/x.py' is an absolute path",
        stage="archive",
    ),
    HostileCase(
        "drive_letter",
        lazy(lambda: zip_bytes({"features.py": _OK, "C:/Windows/x.py": "x = 1\n"}), "win.zip"),
        "member 'C:/Windows/x.py' starts with a drive letter",
        stage="archive",
    ),
    HostileCase(
        "control_character",
        lazy(lambda: tar_bytes({"features.py": _OK, "bad\x1bname.py": "x = 1\n"}), "ctrl.tar"),
        "has control characters or invalid text in its name",
        stage="archive",
    ),
    # --- Member types ---
    HostileCase(
        "symlink_zip",
        lambda _: (
            zip_with([(_zip_symlink("link.py"), b"/etc/passwd"), (zipfile.ZipInfo("features.py"), _OK.encode())]),
            "l.zip",
        ),
        "'link.py' is a symbolic link",
        stage="archive",
    ),
    HostileCase(
        "symlink_tar",
        lambda _: (
            tar_bytes({"features.py": _OK}, special=[_tar_special("link.py", tarfile.SYMTYPE, "/etc/passwd")]),
            "l.tar",
        ),
        "'link.py' is a symbolic link",
        stage="archive",
    ),
    HostileCase(
        "hardlink_tar",
        lambda _: (
            tar_bytes({"features.py": _OK}, special=[_tar_special("hard.py", tarfile.LNKTYPE, "features.py")]),
            "h.tar",
        ),
        "'hard.py' is a hard link",
        stage="archive",
    ),
    HostileCase("device_tar", _tar_device, "'dev.py' is a device file", stage="archive"),
    HostileCase(
        "fifo_tar",
        lambda _: (tar_bytes({"features.py": _OK}, special=[_tar_special("pipe.py", tarfile.FIFOTYPE)]), "f.tar"),
        "'pipe.py' is a FIFO",
        stage="archive",
    ),
    HostileCase(
        "compiled_pyc",
        lazy(lambda: zip_bytes({"features.py": _OK, "helpers.pyc": b"\x6f\x0d\x0d\x0a" + bytes(12)}), "pyc.zip"),
        "'helpers.pyc' is compiled code, which cannot be reviewed",
        stage="archive",
    ),
    HostileCase(
        "native_so",
        lazy(lambda: zip_bytes({"features.py": _OK, "lib/_speedups.so": b"\x7fELF" + bytes(60)}), "so.zip"),
        "'lib/_speedups.so' is compiled code",
        stage="archive",
    ),
    HostileCase(
        "duplicate_member",
        lazy(lambda: tar_bytes({"features.py": _OK, "./features.py": "x = 2\n"}), "dup.tar"),
        "member 'features.py' appears twice",
        stage="archive",
    ),
    HostileCase(
        "dotted_module_path",
        lazy(lambda: zip_bytes({"v1.2/features.py": _OK}), "dotted.zip"),
        "a Python file cannot be imported from a name with a '.' in it",
        stage="archive",
    ),
    # --- While extracting ---
    HostileCase(
        "zip_header_lies", lazy(lying_zip, "liar.zip"), "the archive is corrupt (member 'features.py'", stage="extract"
    ),
    # --- The definitions (run in the sandbox's subprocess) ---
    HostileCase(
        "syntax_error",
        defs("import os\n\ndef broken(:\n    pass\n", base=False),
        "definitions failed to load: SyntaxError in features.py line 3: invalid syntax",
    ),
    HostileCase(
        "missing_module",
        defs("import nonexistent\n", base=False),
        "definitions failed to load: ModuleNotFoundError in features.py line 1: No module named 'nonexistent'",
    ),
    HostileCase(
        "infinite_loop",
        defs("while True:\n    pass\n"),
        "parsing took longer than 10 s and was stopped (an infinite loop?)",
        settings={"GOVERNANCE_PARSE_TIMEOUT_SECONDS": 10},  # the setting's minimum: `import feast` takes ~4 s
    ),
    HostileCase(
        "reads_secret_from_environ",
        defs('import os\nSECRET = os.environ["DJANGO_SECRET_KEY"]\n', base=False),
        "KeyError in features.py line 2: 'DJANGO_SECRET_KEY' (definitions run without environment variables)",
    ),
    HostileCase(
        "memory_hog",
        defs("hog = bytearray(10**10)\n"),
        "parsing ran out of memory (limit 2048 MB)",
    ),
    HostileCase(
        "fork_bomb",
        defs("import os\nwhile True:\n    os.fork()\n", base=False),
        "PermissionError in features.py line 3: starting processes is not allowed",
    ),
    HostileCase(
        "huge_file_python",
        defs(
            "with open('/tmp/huge.bin', 'wb') as out:\n"
            "    for _ in range(10_000):\n"
            "        out.write(bytes(1_000_000))\n",
            base=False,
        ),
        "PermissionError in features.py line 1: writing files is not allowed",
    ),
    HostileCase(
        # Native code opens files without Python's audit hook: RLIMIT_FSIZE stops it at 64 MB.
        "huge_file_native",
        defs(
            "import pyarrow as pa\n"
            "out = pa.OSFile('/tmp/huge.bin', 'wb')\n"
            "for _ in range(200):\n"
            "    out.write(bytes(1024 * 1024))\n",
            base=False,
        ),
        "File too large",
    ),
    HostileCase(
        "unknown_dtype",
        defs(
            'bad = FeatureView(name="bad", entities=[driver], schema=[Field(name="x", dtype="float64")], source=source)\n'
        ),
        "definitions failed to load: unknown dtype in features.py line 15: a Field's dtype must be a type from feast.types",
    ),
    HostileCase(
        "duplicate_feature_views",
        defs("", extra={"more_features.py": SECOND_DRIVER_STATS}),
        "invalid definitions: two feature views are named 'driver_stats' (features.py:8, more_features.py:8)",
    ),
    HostileCase(
        # PostgreSQL text and JSON cannot hold NUL: refused up front, naming the object and its field.
        "nul_in_a_description",
        defs('rider = Entity(name="rider", join_keys=["rider_id"], description="one\\x00two")\n'),
        "invalid definitions: entity 'rider' (features.py:15): its description hold a NUL character",
    ),
    HostileCase(
        "undeclared_entity",
        defs(
            'orders = FeatureView(name="orders", entities=[customer], schema=[Field(name="n", dtype=Int64)], source=source)\n'
        ),
        "NameError in features.py line 15: name 'customer' is not defined",
    ),
    HostileCase(
        "shadows_installed_module",
        defs(BASE, base=False, name="json.py"),
        "'json.py' cannot be imported as 'json': the Python module 'json' already exists",
    ),
    HostileCase(
        # 50 MB on stdout and stderr, then an error: the output is read and dropped, the message stays short.
        "print_flood_then_error",
        defs(
            "import sys\n"
            "line = 'x' * 1023 + '\\n'\n"
            "for _ in range(50 * 1024):\n"
            "    sys.stdout.write(line)\n"
            "    sys.stderr.write(line)\n"
            "import module_after_the_flood\n",
            base=False,
        ),
        "ModuleNotFoundError in features.py line 6: No module named 'module_after_the_flood'",
    ),
]


# --- Escapes: definitions that try to get out of the sandbox -----------------------------------------
#
# Each escape case is a definitions file that tries to read a known secret file (planted by the test in the
# portal's var/ directory), to write outside its folder and to leave code for a later process. It catches
# every failure, records what each attempt got and puts that record where a proposer would read it: an
# entity's description (the plan), stdout and stderr (the portal's logs) and, for some, the error message.
# The test then checks that the secret's content appears in none of them and that no file appeared anywhere
# but in the sandbox's fresh temporary directory.


@dataclass(frozen=True)
class EscapeTargets:
    """What an attacker would aim at on this machine (the test plants the secret, named with a fresh token)."""

    secret: Path  # a secret file of the portal's (mode 0600), like var/secret_key or var/demo-credentials.txt
    token: str  # in the name of every file the escape writes: none may appear anywhere on the host
    var_dir: Path
    base_dir: Path
    site_packages: list[str]  # the portal's virtualenv: a .pth there runs in every later Python process


@dataclass(frozen=True)
class EscapeCase:
    id: str
    attempts: str  # the body: calls attempt(name, action) (see ESCAPE_PREAMBLE for the helpers)
    via_error: bool = False  # also raise the record as the error, so it lands in the refusal message


ESCAPE_PREAMBLE = textwrap.dedent(
    """\
    import json
    import os
    import sys

    from feast import Entity

    SECRET = {secret!r}
    TOKEN = {token!r}
    VAR_DIR = {var_dir!r}
    BASE_DIR = {base_dir!r}
    SITE_PACKAGES = {site_packages!r}
    PTH = "import os; open('/tmp/" + TOKEN + "-pth-ran', 'w').write('x')\\n"
    results = {{}}


    def attempt(name, action):
        try:
            results[name] = "ok: " + repr(action())[:2000]
        except BaseException as exc:  # everything, so one refusal does not stop the next attempt
            results[name] = (type(exc).__name__ + ": " + str(exc))[:300]


    def read(path):
        with open(path, "rb") as file:
            return file.read()


    def write(path, text="x"):
        with open(path, "w") as file:
            file.write(text)
        return path


    def os_read(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, 65536)
        finally:
            os.close(fd)


    def os_write(path, text="x"):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return path


    def everything(read, write):
        \"\"\"Every target, with the given read and write functions.\"\"\"
        attempt("read_secret", lambda: read(SECRET))
        attempt("read_var_credentials", lambda: read(VAR_DIR + "/demo-credentials.txt"))
        attempt("read_portal_settings", lambda: read(BASE_DIR + "/portal/settings.py"))
        attempt("list_var", lambda: os.listdir(VAR_DIR))
        attempt("read_parent_environ", lambda: read("/proc/" + str(os.getppid()) + "/environ"))
        attempt("read_self_environ", lambda: read("/proc/self/environ"))
        attempt("read_secret_via_proc_root", lambda: read("/proc/self/root" + SECRET))
        attempt("write_tmp", lambda: write("/tmp/" + TOKEN + "-escape"))
        attempt("write_var", lambda: write(VAR_DIR + "/" + TOKEN + "-escape"))
        attempt("write_base", lambda: write(BASE_DIR + "/" + TOKEN + "_escape.py"))
        for i, site_dir in enumerate(SITE_PACKAGES):
            attempt(f"pth_drop_{{i}}", lambda: write(site_dir + "/" + TOKEN + ".pth", PTH))
        attempt("write_venv_bin", lambda: write(sys.prefix + "/bin/" + TOKEN))


    def realpath_always_allowed():
        \"\"\"The escape from the report: realpath answers the sandbox's own result path (sys.argv[2]), which the
        audit hook allows to be read and written. Returns a function that undoes it.\"\"\"
        import posixpath

        saved = posixpath.realpath.__code__

        def fake(filename, *, strict=False):
            import sys

            return sys.argv[2]

        posixpath.realpath.__code__ = fake.__code__

        def restore():
            posixpath.realpath.__code__ = saved

        return restore


    """
)

ESCAPE_EPILOGUE = textwrap.dedent(
    """\

    record = json.dumps(results, sort_keys=True)
    print(record)
    print(record, file=sys.stderr)
    escape_report = Entity(name="escape_report", join_keys=["escape_id"], description=record)
    """
)

ESCAPE_CASES: list[EscapeCase] = [
    EscapeCase(
        # The report's escape: realpath patched through __code__, everything read and written, then restored.
        "realpath_code_swap",
        "restore = realpath_always_allowed()\ntry:\n    everything(read, write)\nfinally:\n    restore()\n",
    ),
    EscapeCase(
        "realpath_code_swap_reported_as_error",
        "restore = realpath_always_allowed()\ntry:\n    everything(read, write)\nfinally:\n    restore()\n",
        via_error=True,
    ),
    EscapeCase(
        "patch_os_module",
        "import posixpath\n"
        "os.path.realpath = posixpath.realpath = lambda p, **k: sys.argv[2]\n"
        "os.fspath = lambda p: sys.argv[2] if False else p\n"
        "everything(os_read, os_write)\n",
    ),
    EscapeCase(
        "patch_builtins_and_io_open",
        "import builtins\nimport io\nimport _io\n"
        "restore = realpath_always_allowed()\n"
        "saved = builtins.open\n"
        "builtins.open = io.open = lambda path, mode='r', *a, **k: _io.FileIO(path, mode.replace('t', ''))\n"
        "try:\n    everything(read, lambda path, text='x': write(path, text.encode()))\n"
        "finally:\n    restore()\n    builtins.open = io.open = saved\n",
    ),
    EscapeCase(
        "ctypes_libc",
        "import ctypes\n"
        "def libc_read(path):\n"
        "    libc = ctypes.CDLL(None)\n"
        "    fd = libc.open(path.encode(), 0)\n"
        "    buf = ctypes.create_string_buffer(65536)\n"
        "    return buf.raw[: libc.read(fd, buf, 65536)]\n"
        "def libc_write(path, text='x'):\n"
        "    libc = ctypes.CDLL(None)\n"
        "    fd = libc.open(path.encode(), 0o1101, 0o644)\n"
        "    libc.write(fd, text.encode(), len(text))\n"
        "    return path\n"
        "everything(libc_read, libc_write)\n",
    ),
    EscapeCase(
        # Native code opens files without raising audit events at all: no Python trick is even needed.
        "native_file_access",
        "import pyarrow as pa\n"
        "def native_read(path):\n"
        "    with pa.OSFile(path, 'rb') as f:\n"
        "        return f.read()\n"
        "def native_write(path, text='x'):\n"
        "    with pa.OSFile(path, 'wb') as f:\n"
        "        f.write(text.encode())\n"
        "    return path\n"
        "everything(native_read, native_write)\n",
        via_error=True,
    ),
    EscapeCase(
        "proc_self",
        "restore = realpath_always_allowed()\n"
        "try:\n"
        "    for name in ('environ', 'cmdline', 'mounts', 'maps', 'status'):\n"
        "        attempt('proc_self_' + name, lambda: read('/proc/self/' + name))\n"
        "    attempt('proc_1_environ', lambda: read('/proc/1/environ'))\n"
        "    attempt('list_proc', lambda: os.listdir('/proc'))\n"
        "    attempt('proc_root_secret', lambda: read('/proc/1/root' + SECRET))\n"
        "finally:\n"
        "    restore()\n",
    ),
    EscapeCase(
        "tmp_and_site_packages_writes",
        "import tempfile\n"
        "restore = realpath_always_allowed()\n"
        "try:\n"
        "    attempt('mkstemp', lambda: tempfile.mkstemp(prefix=TOKEN))\n"
        "    attempt('mkdir_tmp', lambda: os.mkdir('/tmp/' + TOKEN + '-dir'))\n"
        "    attempt('os_write_tmp', lambda: os_write('/tmp/' + TOKEN + '-os'))\n"
        "    for i, site_dir in enumerate(SITE_PACKAGES):\n"
        "        attempt(f'os_pth_{i}', lambda: os_write(site_dir + '/' + TOKEN + '-os.pth', PTH))\n"
        "        attempt(f'usercustomize_{i}', lambda: write(site_dir + '/usercustomize.py', PTH))\n"
        "    attempt('sitecustomize_stdlib', lambda: write(os.path.dirname(os.__file__) + '/sitecustomize.py', PTH))\n"
        "finally:\n"
        "    restore()\n",
    ),
]


def escape_upload(case: EscapeCase, targets: EscapeTargets) -> tuple[bytes, str]:
    """The escape case as an upload: one definitions file that also declares a valid entity (the report)."""
    preamble = ESCAPE_PREAMBLE.format(
        secret=str(targets.secret),
        token=targets.token,
        var_dir=str(targets.var_dir),
        base_dir=str(targets.base_dir),
        site_packages=list(targets.site_packages),
    )
    code = preamble + case.attempts + ESCAPE_EPILOGUE
    if case.via_error:
        code += "raise RuntimeError(record)\n"
    return zip_bytes({"escape.py": code}), f"{case.id}.zip"


@contextmanager
def planted_escape_targets(var_dir: Path, base_dir: Path) -> Iterator[EscapeTargets]:
    """A secret file of the portal's (0600, in its var/ directory) with fresh content, and a fresh token that
    names every file the escapes try to write. Removes anything named with the token afterwards, so a failing
    test never leaves a .pth behind."""
    token = f"escape{secrets.token_hex(6)}"
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = var_dir / f"secret_key-{secrets.token_hex(4)}"  # not named with the token: it is no leftover
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, f"portal-secret-{secrets.token_hex(16)}".encode())
    os.close(fd)
    targets = EscapeTargets(
        secret=secret, token=token, var_dir=var_dir, base_dir=base_dir, site_packages=list(site.getsitepackages())
    )
    customize = customize_files(targets)
    try:
        yield targets
    finally:
        secret.unlink()
        for path in [*leftovers(targets), *(customize_files(targets) - customize)]:
            path.unlink()


def customize_files(targets: EscapeTargets) -> set[Path]:
    """sitecustomize/usercustomize modules: they run in every later Python process, like a .pth."""
    stdlib = Path(os.__file__).parent
    candidates = [stdlib / "sitecustomize.py", *(Path(d) / "usercustomize.py" for d in targets.site_packages)]
    return {p for p in candidates if p.exists()}


def leftovers(targets: EscapeTargets) -> list[Path]:
    """Files named with the token anywhere an escape aimed: the host's /tmp, var/, the portal's directory,
    site-packages, the virtualenv's bin/. (The sandbox's own temporary directory is removed by then.)"""
    found: list[Path] = []
    shallow = [Path("/tmp"), targets.base_dir, Path(sys.prefix) / "bin", *map(Path, targets.site_packages)]
    for directory in shallow:
        found += [p for p in directory.iterdir() if targets.token in p.name]
    for directory, dirs, files in os.walk(targets.var_dir):
        found += [Path(directory) / n for n in [*dirs, *files] if targets.token in n]
    return found


# --- A pickled UDF that is not its source text --------------------------------------------------------------
#
# The report's second attack: the demo's on-demand view, whose shown source reads a module constant as a
# default (so the text fails when Feast runs it alone), and whose function is replaced before Feast pickles it
# by an object whose unpickling runs a payload. Feast 0.67 falls back to unpickling when the text fails.

_DEMO_UDF_HEADER = "def employee_risk_signals(inputs: pd.DataFrame) -> pd.DataFrame:\n"
_DEMO_UDF_LINE = '    out["review_overdue"] = (inputs["months_since_last_review"] > 12).astype("int64")\n'


def udf_swap_upload(marker: Path, *, text_runs_alone: bool) -> tuple[bytes, str]:
    """The demo repo with employee_risk_signals changed and its pickled function swapped for a payload that
    creates `marker` when unpickled. With text_runs_alone=False the shown source uses an undefined default."""
    text = (Path(__file__).resolve().parents[2] / "feature_repo" / "features.py").read_text()
    assert _DEMO_UDF_HEADER in text and _DEMO_UDF_LINE in text
    if text_runs_alone:
        text = text.replace(_DEMO_UDF_LINE, _DEMO_UDF_LINE.replace("> 12", "> 18"))
    else:
        header = _DEMO_UDF_HEADER.replace("pd.DataFrame) ->", "pd.DataFrame, scale=SCALE) ->")
        decorator = "@on_demand_feature_view(\n"
        assert text.count(decorator) == 1
        text = text.replace(_DEMO_UDF_HEADER, header).replace(decorator, "SCALE = 1.0\n\n\n" + decorator)
    text += textwrap.dedent(
        f"""

        class _Payload:
            __name__ = "employee_risk_signals"

            def __reduce__(self):
                return (exec, ("open({str(marker)!r}, 'w').write('payload ran')",))


        employee_risk_signals.feature_transformation.udf = _Payload()
        """
    )
    return zip_bytes({"repo/features.py": text}), "udf_swap.zip"
