"""The launcher of the upload sandbox: builds the worker's view of the filesystem, drops privileges, execs.

Run by sandbox.py, already inside fresh namespaces made by util-linux `unshare` (mount, PID, network, IPC,
UTS; plus a user namespace when the portal is not root):

    python -I -S _jail.py <spec JSON>

or loaded by the template process (_zygote.py), whose children call `enter` in the same fresh namespaces and
then run the parser without an exec. It imports the standard library only and runs before any uploaded code.
Steps:

1. Make every mount private (nothing propagates back to the host), mount an empty tmpfs as the new
   root and bind-mount into it, read-only: the system libraries (/usr and the /lib, /bin links),
   a few /etc files the dynamic loader needs, the Python installation and the virtualenv (at their
   own paths, so the interpreter finds its site-packages), /dev/null, /dev/zero, /dev/urandom, the
   worker script and the upload's copy. Writable: a private, size-limited tmpfs at /tmp and the
   result directory. There is no /proc, no portal directory, no secret mount.
2. pivot_root into it and detach the old root: the host's filesystem is no longer reachable by path.
   The new root itself is then made read-only.
3. Drop privileges: when the portal runs as root (outside any user namespace), switch to uid/gid
   65534 (nobody: owns nothing); inside a user namespace (the portal is not root), empty the
   capability bounding set so the exec below leaves no capability. Then no_new_privs, the
   parent-death signal (setuid clears it), RLIMIT_NPROC, and empty the capability sets (capset). Then exec the
   worker (or, in the template's child, call it).

Any failure before the exec prints one line starting with SETUP_FAILED and exits with SETUP_EXIT:
the parent turns that into "uploads are disabled", never into a weaker sandbox.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from typing import Any

SETUP_EXIT = 111
SETUP_FAILED = "SETUP_FAILED"
NOBODY = 65534

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC}  # statvfs f_flag -> mount flag
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or ''} on {target}",
    )


def _bind_read_only(source: str, target: str) -> None:
    """Bind `source` at `target`, then remount it read-only keeping the source's nosuid/nodev/noexec (a user
    namespace may not clear flags it did not set)."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass
    _mount(source, target, None, MS_BIND)
    kept = 0
    for st_flag, ms_flag in ST_FLAGS.items():
        if os.statvfs(target).f_flag & st_flag:
            kept |= ms_flag
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | kept)


def _build_root(spec: dict[str, Any]) -> None:
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + link
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{root}/{link}")
        elif os.path.isdir(host):
            _bind_read_only(host, f"{root}/{link}")
    # The private tmpfs first: a read-only path below it (a virtualenv under /tmp) is then bound on top of it,
    # not hidden by it.
    for target, size in spec["tmpfs"]:
        os.makedirs(root + target, exist_ok=True)
        _mount("tmpfs", root + target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for source in spec["read_only"]:
        if os.path.exists(source):
            _bind_read_only(source, root + source)
    for source, target in spec["read_only_at"]:
        _bind_read_only(source, root + target)
    source, target = spec["writable"]
    os.makedirs(root + target, exist_ok=True)
    _mount(source, root + target, None, MS_BIND)
    _mount(None, root + target, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV)
    # pivot_root, then detach the old root: unlike chroot, nothing of the host stays reachable.
    old = root + "/.old-root"
    os.mkdir(old, 0o700)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise SetupError(f"pivot_root: unknown architecture {os.uname().machine}")
    _check(_libc.syscall(number, root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old-root", MNT_DETACH), "umount the old root")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _drop_privileges(spec: dict[str, Any]) -> None:
    if spec["switch_user"]:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        if os.getuid() != NOBODY or os.geteuid() != NOBODY:
            raise SetupError("could not switch to uid 65534")
    else:
        # Root of our own user namespace: the exec below keeps no capability once the bounding set is empty.
        for cap in range(64):
            if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
                _check(-1, f"dropping capability {cap}")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "parent-death signal")
    nproc = spec["nproc"]
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (capset). Needed where no exec follows (the template
    process's children, sandbox_zygote.py): an exec from uid 0 with an empty bounding set would clear them."""
    number = SYS_CAPSET.get(os.uname().machine)
    if number is None:
        raise SetupError(f"capset: unknown architecture {os.uname().machine}")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} words, all zero
    _check(_libc.syscall(number, header, data), "capset")


def enter(spec: dict[str, Any]) -> None:
    """Build the jail's root, pivot into it and drop every privilege; raises SetupError (or OSError)."""
    os.umask(0o022)  # the directories made for the new root must be traversable by uid 65534, whatever ours was
    _build_root(spec)
    os.chdir(spec["cwd"])
    _drop_privileges(spec)
    _clear_capabilities()


def main(argv: list[str]) -> int:
    try:
        spec = json.loads(argv[1])
        enter(spec)
    except (SetupError, OSError, ValueError, KeyError, IndexError) as exc:
        sys.stderr.write(f"{SETUP_FAILED}: {exc}\n")
        return SETUP_EXIT
    try:
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        sys.stderr.write(f"{SETUP_FAILED}: exec {spec['argv'][0]}: {exc}\n")
    return SETUP_EXIT


if __name__ == "__main__":
    sys.exit(main(sys.argv))
