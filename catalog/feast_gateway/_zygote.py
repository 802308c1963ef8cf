"""The upload sandbox's template process: Feast imported once, a fresh jailed child for every parse.

Started by sandbox.py, once per portal process, from scratch (no secrets in its environment, never Django or
the portal's code):

    python -I _zygote.py <socket path>

It loads _jail.py and _parse_worker.py from this directory, imports what the parser needs (Feast, pandas,
pyarrow: seconds of work that every parse used to pay), listens on a Unix socket in a 0700 directory of the
portal's, prints READY and waits. It exits when its stdin closes (the portal process is gone).

It never runs uploaded code itself. For each connection (one request: a JSON line) it forks a handler, which:

1. answers {"pid": <its pid>} (the portal kills that pid on timeout),
2. unshares the same namespaces util-linux `unshare` gives the exec path (mount, PID, network, IPC, UTS, and
   a user namespace mapping only its own uid to root when the portal is not root),
3. forks the child that becomes PID 1 of the new PID namespace. The child sends its stdout and stderr to a
   pipe the handler drains (keeping the tail, written to the request's log file at the end), closes every
   other descriptor, sets the resource limits, builds the jail and drops
   every privilege (_jail.enter: pivot_root into a read-only root, uid 65534 or no capability at all,
   no_new_privs), then either runs the parser in-process (`call`) or execs a program (`exec`, the
   isolation probe),
4. waits for it and answers {"status": <exit code, or minus the signal>}.

A child is a copy of this process: it holds Feast's modules and nothing else (this process never saw a
secret or an upload), and nothing it does reaches this process or the next child. It cannot see them: its
PID namespace holds only itself and its own descendants, and its filesystem is the jail's.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import resource
import select
import signal
import socket
import sys
import traceback
import warnings
from types import ModuleType
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_REQUEST = 1 << 20
OUTPUT_KEEP = 64 * 1024  # bytes of the child's stdout and stderr kept (the tail); the rest is read and dropped
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _load(name: str, filename: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, filename))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {filename}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def _unshare(user_namespace: bool, requested: int) -> None:
    """Into fresh namespaces (this handler only; its next child is the new PID namespace's PID 1): the ones
    requested, never fewer than NAMESPACES."""
    uid, gid = os.getuid(), os.getgid()
    flags = NAMESPACES | requested | (CLONE_NEWUSER if user_namespace else 0)
    if _libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare failed: {os.strerror(ctypes.get_errno())}")
    if user_namespace:  # as `unshare --map-root-user`: our own uid and gid, and nothing else, become root
        _write_file("/proc/self/setgroups", "deny")
        _write_file("/proc/self/uid_map", f"0 {uid} 1")
        _write_file("/proc/self/gid_map", f"0 {gid} 1")


def _child(request: dict[str, Any], output: int, alive: int, jail: ModuleType, worker: ModuleType) -> int:
    """PID 1 of the new namespaces: redirect, limit, jail, run. Never returns to the caller's loop."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if select.select([alive], [], [], 0)[0]:  # EOF: the handler died before the line above took effect
        return 1
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.closerange(3, 1 << 20)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    spec = request["spec"]
    try:
        for which, soft, hard in request["rlimits"]:
            resource.setrlimit(which, (soft, hard))
        jail.enter(spec)
    except (jail.SetupError, OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"{jail.SETUP_FAILED}: {exc}\n")
        return int(jail.SETUP_EXIT)
    os.environ.clear()
    os.environ.update(spec["env"])
    argv = spec["argv"]
    if request["mode"] == "exec":
        try:
            os.execve(argv[0], argv, spec["env"])
        except OSError as exc:
            sys.stderr.write(f"{jail.SETUP_FAILED}: exec {argv[0]}: {exc}\n")
        return int(jail.SETUP_EXIT)
    sys.argv = list(argv)
    return int(worker.main(list(argv)))


def _drain(fd: int) -> bytes:
    """Everything written to the child's stdout and stderr until the last writer is gone; the tail is kept."""
    kept = bytearray()
    while chunk := os.read(fd, 65536):
        kept += chunk
        if len(kept) > 2 * OUTPUT_KEEP:
            del kept[:-OUTPUT_KEEP]
    return bytes(kept[-OUTPUT_KEEP:])


def _handle(conn: socket.socket, jail: ModuleType, worker: ModuleType) -> None:
    """One request, in a process of its own (a fork of the template)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the template died: so do we, and our child
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk or len(data) > MAX_REQUEST:
            return
        data += chunk
    request = json.loads(data)
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    try:
        _unshare(request["user_namespace"], int(request["namespaces"]))
    except OSError as exc:
        _write_file(request["log"], f"unshare: {exc.strerror}\n")
        conn.sendall(json.dumps({"status": 1}).encode() + b"\n")
        return
    # Opened now: the child's pivot_root moves this handler's root too (they share the mount namespace).
    log = os.open(request["log"], os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    output_read, output_write = os.pipe()
    alive_read, alive_write = os.pipe()  # the child sees EOF on it once this handler is gone
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            conn.close()
            os.close(output_read)
            os.close(alive_write)
            code = _child(request, output_write, alive_read, jail, worker)
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):  # the definitions may have closed or replaced it
                    stream.flush()
            os._exit(code)  # no interpreter shutdown: threads or atexit handlers the upload left cannot hang it
    os.close(output_write)
    os.close(alive_read)
    output = _drain(output_read)  # EOF once PID 1, and so everything in its namespace, is gone
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    os.write(log, output)
    conn.sendall(json.dumps({"status": code}).encode() + b"\n")


def main(argv: list[str]) -> int:
    jail = _load("feast_sandbox_jail", "_jail.py")
    worker = _load("feast_sandbox_worker", "_parse_worker.py")
    worker.preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(argv[1])
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            return 0  # the portal process is gone
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # a native allocator thread: its fork is safe
            pid = os.fork()
        if pid == 0:
            code = 0
            try:
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _handle(conn, jail, worker)
            except BaseException:  # noqa: BLE001 (a handler never returns into the template's loop)
                traceback.print_exc()  # to the template's log
                code = 1
            finally:
                os._exit(code)
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
