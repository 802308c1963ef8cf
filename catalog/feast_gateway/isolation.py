"""The portal's side of the upload jail: the template process, one jailed run, and the isolation probe.

Uploaded definitions never run in the portal's process. Each parse (and each check of a transformation's
text) runs in a fresh child of the template process (_zygote.py): a Python started from scratch with an
environment built here (nothing of the portal's: no database URL, key or token), which imports Feast once
and then forks a child per request. The child gets its own mount, PID, network, IPC and UTS namespaces (plus
a user namespace when the portal is not root) and _jail.py builds its whole filesystem: a read-only root
(pivot_root, the host's root detached) holding only /usr, the interpreter and its site-packages, the upload's
copy (read-only), a private size-limited /tmp and the result directory; no /proc, no portal directory, no
secret. It then runs as uid 65534 (the portal is root) or with no capability left (in its user namespace),
with no_new_privs, limits on address space, CPU time, file size, processes and core dumps, and a wall-clock
timeout enforced here. Its stdout and stderr go to a file of the request's, read back bounded.

Starting Python and importing Feast took 4–8 s of every parse; a fork of the template takes milliseconds
and isolates the same way (the child is a copy of a process that never saw a secret or another upload).

One template per portal process (a forked process, e.g. a Celery pool child, starts its own), started on
first use: `isolation_check` (preflight, /readyz) starts it through the probe. It exits when the portal
process does (its stdin closes). Where the jail cannot be built, `isolation_check` says why and every upload
is refused (UploadSandboxUnavailable): never a weaker sandbox.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from catalog.exceptions import UploadSandboxUnavailable
from catalog.feast_gateway.base import feast_api
from catalog.feast_gateway.upload_archive import MB, UploadLimits, printable_name, remove_tree

logger = logging.getLogger(__name__)

WORKER = Path(__file__).resolve().with_name("_parse_worker.py")
TEMPLATE = Path(__file__).resolve().with_name("_zygote.py")

# Where the worker sees its inputs and output (inside its own root; the host paths are never shown to it).
JAIL_DIR = "/sandbox"
JAIL_REPO = f"{JAIL_DIR}/repo"
JAIL_OUT = f"{JAIL_DIR}/out"
JAIL_WORKER = f"{JAIL_DIR}/worker.py"
JAIL_POLICY = f"{JAIL_DIR}/policy.json"
JAIL_UDFS = f"{JAIL_DIR}/udfs.json"
_SYSTEM_READ_ONLY = ["/usr", "/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/zero", "/dev/urandom"]
# uid 65534 is shared by every sandbox on the host (and anything else running as nobody): a budget for all of
# them, not per upload. In a user namespace the count is of this sandbox's processes only.
NPROC_SHARED_LIMIT = 256
NPROC_LIMIT = 64  # processes + threads, set only inside a fresh user namespace (where it counts only ours)
# unshare(2) flags of every jail: mount, PID, network, IPC and UTS namespaces (_zygote.py adds these to
# whatever it is sent, and a user namespace when the portal is not root).
NAMESPACES = 0x00020000 | 0x20000000 | 0x40000000 | 0x08000000 | 0x04000000
OUTPUT_KEEP = 64 * 1024  # bytes of the worker's stdout/stderr kept (the tail)
TEMPLATE_START_SECONDS = 120  # importing Feast on a busy machine
_SETUP_EXIT = 111  # _jail.SETUP_EXIT (that module runs in the template, it is not imported here)
_SETUP_FAILED = b"SETUP_FAILED: "


@dataclass(frozen=True)
class JailRun:
    """How one jailed run ended: timed out (and was killed), its exit code (minus the signal), its output's tail."""

    timed_out: bool
    returncode: int
    output: bytes


@dataclass(frozen=True)
class _Jail:
    """How the worker is isolated, decided from what this process is (root or not)."""

    as_root: bool  # the portal runs as root: namespaces without a user namespace, then uid 65534

    def describe(self) -> str:
        who = "uid 65534 (nobody)" if self.as_root else "a user namespace with no capabilities"
        return (
            f"own mount, PID, network, IPC and UTS namespaces; a read-only root (pivot_root) holding only the "
            f"interpreter, its libraries and the upload; a private /tmp; {who}"
        )


def _jail() -> _Jail:
    """The jail this process can build, or UploadSandboxUnavailable naming what is missing."""
    if sys.platform != "linux":
        raise _unavailable(f"it needs Linux namespaces (this is {sys.platform})")
    return _Jail(as_root=os.geteuid() == 0)


def _unavailable(reason: str) -> UploadSandboxUnavailable:
    return UploadSandboxUnavailable(
        f"uploads are disabled: this machine cannot isolate uploaded code: {reason}. "
        "See 'Upload sandbox' in the README for what the kernel and the container must allow."
    )


def worker_env() -> dict[str, str]:
    """Built from scratch: nothing of the portal's environment (database URLs, keys, tokens) is passed on."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def read_denied() -> list[str]:
    """Paths the worker's audit hook refuses to read (a second layer: the jail does not contain them)."""
    paths = {"/proc", "/run/secrets", "/var/run/secrets", str(settings.BASE_DIR), str(settings.VAR_DIR)}
    paths.update(str(p) for p in getattr(settings, "FEAST_REPO_PATHS", []))
    for name, value in os.environ.items():
        if name.endswith("_FILE") and value.startswith("/"):
            paths.add(str(Path(value).parent))
    return sorted(paths)


def _read_only_paths() -> list[str]:
    """The system libraries, the interpreter and its site-packages: never the portal's own directories."""
    portal_dirs = [Path(settings.BASE_DIR).resolve(), Path(settings.VAR_DIR).resolve()]
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    prefixes.add(Path(sys.executable).resolve().parent.parent)
    wanted: list[Path] = [Path(p) for p in _SYSTEM_READ_ONLY] + sorted(prefixes)
    for path in wanted:
        # The virtualenv may live inside the portal's directory (.venv): the venv alone, never its parent.
        if any(d.is_relative_to(path) for d in portal_dirs):
            raise _unavailable(f"{path}, which the jail needs read-only, contains the portal's own directory")
    kept: list[str] = []
    for path in sorted(wanted, key=lambda p: (len(p.parts), str(p))):
        if not any(path.is_relative_to(k) for k in map(Path, kept)):
            kept.append(str(path))
    return kept


def _jail_spec(jail: _Jail, work: Path, argv: list[str], *, binds: list[tuple[str, str]], cwd: str) -> dict[str, Any]:
    out = work / "out"
    out.mkdir(mode=0o700)
    if jail.as_root:
        os.chown(out, 65534, 65534)  # the only directory the sandbox's user owns, in a directory it cannot reach
    root = work / "root"
    root.mkdir(mode=0o700)
    return {
        "root": str(root),
        "read_only": _read_only_paths(),
        "read_only_at": binds,
        "tmpfs": [["/tmp", 128 * MB]],
        "writable": [str(out), JAIL_OUT],
        "cwd": cwd,
        "switch_user": jail.as_root,
        "nproc": NPROC_SHARED_LIMIT if jail.as_root else NPROC_LIMIT,
        "argv": argv,
        "env": worker_env(),
    }


def _rlimits(limits: UploadLimits) -> list[tuple[int, int, int]]:
    """Address space, CPU time, file size and core dumps of the jailed child (RLIMIT_NPROC is set by _jail.py
    once it runs as the sandbox's own user). Never above this process's own hard limits."""

    def clamp(which: int, value: int) -> int:
        hard = resource.getrlimit(which)[1]
        return value if hard == resource.RLIM_INFINITY else min(value, hard)

    memory = limits.memory_mb * MB
    return [
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


# --- The template process ------------------------------------------------------------------------


@dataclass
class _Template:
    owner: int  # the pid of the portal process that started it
    proc: subprocess.Popen[bytes]
    directory: Path
    socket_path: str


_template: _Template | None = None
_template_lock = threading.Lock()


def _template_socket() -> str:
    """The socket of this process's template, started (and importing Feast) on first use."""
    global _template
    with _template_lock:
        current = _template
        if current is not None and current.owner == os.getpid() and current.proc.poll() is None:
            return current.socket_path
        if current is not None and current.owner == os.getpid():
            logger.warning(
                "the upload sandbox's template process exited (%s); starting another", current.proc.returncode
            )
            _stop(current)
        _template = _start_template()
        return _template.socket_path


def warm() -> None:
    """Start this process's template in the background, if it is not running, and import Feast here (web
    workers at start, and the upload form, call this: the first parse in a process would otherwise wait for
    both imports while the user waits)."""
    current = _template
    if sys.platform != "linux" or (
        current is not None and current.owner == os.getpid() and current.proc.poll() is None
    ):
        return
    threading.Thread(target=_warm, name="upload-sandbox-warm", daemon=True).start()


def _warm() -> None:
    try:
        _template_socket()
    except UploadSandboxUnavailable as exc:
        logger.warning("%s", exc)
    feast_api()  # this process reads the parsed protos with Feast's classes: its own import takes seconds too


def _start_template() -> _Template:
    directory = Path(tempfile.mkdtemp(prefix="feast-sandbox-template-"))  # 0700: only this user connects
    socket_path = str(directory / "socket")
    log = directory / "template.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(  # no shell; the argv is ours
            [sys.executable, "-I", str(TEMPLATE), socket_path],
            cwd=directory,
            env=worker_env(),
            stdin=subprocess.PIPE,  # closed when this process exits: the template then exits too
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    assert proc.stdout is not None
    started = time.monotonic()
    ready, _, _ = select.select([proc.stdout], [], [], TEMPLATE_START_SECONDS)
    line = proc.stdout.readline() if ready else b""
    template = _Template(owner=os.getpid(), proc=proc, directory=directory, socket_path=socket_path)
    if line.strip() != b"READY":
        tail = log.read_bytes()[-2000:].decode("utf-8", "replace")
        _stop(template)
        raise _unavailable(
            f"the sandbox's template process did not start ({printable_name(tail[-300:], 300) or 'no output'})"
        )
    logger.info("upload sandbox template process %s ready in %.1f s", proc.pid, time.monotonic() - started)
    return template


def _stop(template: _Template) -> None:
    if template.proc.poll() is None:
        template.proc.kill()
        try:
            template.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.error("the upload sandbox's template process %s did not die", template.proc.pid)
    for stream in (template.proc.stdin, template.proc.stdout):
        if stream is not None:
            stream.close()
    remove_tree(template.directory)


@atexit.register
def _stop_at_exit() -> None:
    if _template is not None and _template.owner == os.getpid():
        _stop(_template)


# --- One run -------------------------------------------------------------------------------------


def run(
    work: Path, argv: list[str], *, binds: list[tuple[str, str]], cwd: str, limits: UploadLimits, mode: str = "call"
) -> JailRun:
    """Run `argv` (as the jail sees it) in a fresh jail made in `work`, with `binds` read-only.

    mode "call": argv is the parser's (_parse_worker.main), run in the template's child without an exec;
    "exec": argv is a program the child execs (the probe). Raises UploadSandboxUnavailable when the jail
    cannot be built."""
    jail = _jail()
    spec = _jail_spec(jail, work, argv, binds=binds, cwd=cwd)
    log = work / "output.log"
    log.touch(mode=0o600)
    request = {
        "spec": spec,
        "mode": mode,
        "log": str(log),
        "rlimits": _rlimits(limits),
        "namespaces": NAMESPACES,
        "user_namespace": not jail.as_root,
    }
    timed_out, code = _request(request, limits.timeout)
    output = _tail(log)
    _check_setup(code, output, jail)
    return JailRun(timed_out=timed_out, returncode=code, output=output)


def _request(request: dict[str, Any], timeout: int) -> tuple[bool, int]:
    """Send one request to the template; (timed out, exit code). The child is killed at the deadline."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(_template_socket())
            conn.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise _unavailable(f"the sandbox's template process does not answer ({exc})") from None
        buffer = b""
        pid: int | None = None
        timed_out = False
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if "pid" in message:
                    pid = int(message["pid"])
                elif "status" in message:
                    return timed_out, int(message["status"])
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not timed_out:
                timed_out = True
                if pid is not None:
                    _kill(pid)
                # After the kill the handler's end closes at once; this only bounds a wedged kernel.
                deadline = time.monotonic() + 30
                continue
            if remaining <= 0:
                raise _unavailable("the sandbox's child did not stop after SIGKILL")
            if not select.select([conn], [], [], remaining)[0]:
                continue
            chunk = conn.recv(65536)
            if not chunk:
                if timed_out:
                    return True, -signal.SIGKILL
                logger.error("the upload sandbox's template process failed a request: %s", _template_log_tail())
                raise _unavailable("the sandbox's template process ended the request without an answer")
            buffer += chunk


def _template_log_tail() -> str:
    template = _template
    if template is None:
        return ""
    try:
        return (template.directory / "template.log").read_bytes()[-3000:].decode("utf-8", "replace")
    except OSError:
        return ""


def _kill(pid: int) -> None:
    """The request's handler; its child (PID 1 of the jail's namespace) dies with it (parent-death signal), and
    with PID 1 everything the upload started."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _tail(log: Path) -> bytes:
    with open(log, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        file.seek(max(0, size - OUTPUT_KEEP))
        return file.read(OUTPUT_KEEP)


def _check_setup(code: int | None, output: bytes, jail: _Jail) -> None:
    """The jail could not be built (unshare refused, a mount failed): uploads are disabled, never run weaker."""
    lines = output.decode("utf-8", "replace").splitlines()
    setup = [line for line in lines if line.startswith(_SETUP_FAILED.decode())]
    unshare_failed = [line for line in lines if line.startswith("unshare: ")]
    if code == _SETUP_EXIT and setup:
        raise _unavailable(printable_name(setup[-1][len(_SETUP_FAILED) :], 300))
    if code == 1 and unshare_failed:
        mode = "as root" if jail.as_root else "without root (it needs unprivileged user namespaces)"
        raise _unavailable(f"creating namespaces {mode} failed ({printable_name(unshare_failed[-1], 200)})")


# --- The probe -----------------------------------------------------------------------------------

_PROBE = """import json, os, socket
facts = {"uid": os.getuid(), "interfaces": [n for _, n in socket.if_nameindex()], "cwd": os.getcwd()}
facts["visible"] = [p for p in PATHS if os.path.exists(p)]
for name, path in (("root_writable", "/probe"), ("tmp_writable", "/tmp/probe")):
    try:
        open(path, "w").close()
        facts[name] = True
    except OSError:
        facts[name] = False
print(json.dumps(facts))
"""


def isolation_check() -> str:
    """How uploads are isolated on this machine (for preflight and /readyz), or UploadSandboxUnavailable.

    Builds the jail once, through the template process, with a probe instead of the worker and checks what it
    sees. Cached per process: kernel features do not change while the portal runs.
    """
    jail = _jail()
    hidden = {str(settings.VAR_DIR), str(Path(settings.BASE_DIR) / "manage.py"), "/proc/self/environ", "/etc/shadow"}
    hidden.update(value for name, value in os.environ.items() if name.endswith("_FILE") and value.startswith("/"))
    return _probe(jail, tuple(sorted(hidden)), os.getpid())


@functools.lru_cache(maxsize=4)
def _probe(jail: _Jail, hidden: tuple[str, ...], pid: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="feast-upload-probe-"))
    try:
        code = _PROBE.replace("PATHS", repr([*hidden, str(work)]))  # its own directory on the host, too
        argv = [sys.executable, "-I", "-S", "-c", code]
        done = run(work, argv, binds=[], cwd="/tmp", limits=UploadLimits.from_settings(), mode="exec")
        try:
            facts = json.loads(done.output.decode().strip().splitlines()[-1])
        except (ValueError, IndexError, UnicodeError):
            tail = printable_name(done.output.decode("utf-8", "replace")[-300:], 300)
            raise _unavailable(f"the isolation probe failed (exit {done.returncode}: {tail})") from None
    finally:
        remove_tree(work)
    problems = []
    if facts.get("visible"):
        problems.append(f"it can see {', '.join(facts['visible'])}")
    if facts.get("interfaces") != ["lo"]:
        problems.append(f"it has network interfaces {facts.get('interfaces')}")
    if facts.get("root_writable") or not facts.get("tmp_writable"):
        problems.append("its root is writable or its /tmp is not")
    if jail.as_root and facts.get("uid") != 65534:
        problems.append(f"it runs as uid {facts.get('uid')}")
    if problems:
        raise _unavailable("the isolation probe found that " + "; ".join(problems))
    return jail.describe()
