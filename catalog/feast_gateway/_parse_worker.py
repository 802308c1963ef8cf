"""The sandboxed side of catalog.feast_gateway.sandbox: parse an uploaded Feast feature repo.

Run only by sandbox.parse_upload, in a fresh process (no secrets in its environment, resource limits,
a wall-clock timeout, its own process group):

    python -I _parse_worker.py <repo dir> <result file> <project> [<policy file>]
    python -I _parse_worker.py --udf <udfs JSON file> <result file> <policy file>

It imports Feast and the standard library only (never Django or the portal), runs Feast's own parser
(feast.repo_operations.parse_repo) on <repo dir> (the working directory) and writes <result file> as
JSON lines: a header {"status": "ok", "files": [...], "warnings": [...], "network_isolated": bool} and one
line per object {"kind", "proto_type", "name", "proto" (base64), "file", "line"}; or a single
{"status": "error", "kind", "type", "message", "file", "line"} line. The result is written under a
temporary name and renamed, so a process that is killed leaves no result.

With --udf it imports no uploaded module. It checks each transformation's source text: first its shape (one
plain function definition whose defaults and annotations are constants or names, so loading it runs no code),
then that it runs alone the way Feast's udf_rehydrate runs it when it builds the view (that module's own
helpers, loaded without the rest of Feast). It writes a header and one {"index", "error"} line per UDF.

Before the uploaded code runs, a Python audit hook (PEP 578) refuses what parsing definitions never
needs: starting processes, network access, writing files, sending signals, native code through ctypes,
changing resource limits, walking the garbage collector, and reading other processes' /proc entries,
secret mounts and the portal's own directories (the policy file lists those). An audit hook is not a
security boundary (the definitions run in this interpreter and can get around it: see the escape cases in
tests/governance/hostile_cases.py); it turns the obvious attempts into clear errors. The boundary is the
operating system's jail this process runs in (sandbox.py, _jail.py): it sees only the interpreter, the upload
and a private /tmp, has no network and runs as a user that owns nothing.
"""

from __future__ import annotations

import os

# Native thread pools sized to the machine cost memory and threads for nothing here (before numpy loads).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "ARROW_NUM_THREADS"):
    os.environ[_var] = "1"

import ast
import base64
import contextlib
import json
import re
import signal
import site
import socket
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MAX_MESSAGE = 400

_PROCESS_EVENTS = frozenset(
    {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "pty.spawn"}
)
_NETWORK_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sendto",
        "socket.sendmsg",
    }
)
_SIGNAL_EVENTS = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})
_LIMIT_EVENTS = frozenset({"resource.setrlimit", "resource.prlimit"})
_INTROSPECTION_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"})
_WRITE_EVENTS = frozenset(
    {
        "os.mkdir",
        "os.remove",
        "os.rmdir",
        "os.symlink",
        "os.link",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "os.utime",
        "os.chflags",
        "os.setxattr",
        "os.removexattr",
        "shutil.copyfile",
        "shutil.copytree",
        "shutil.move",
        "shutil.rmtree",
        "shutil.make_archive",
        "shutil.unpack_archive",
        "tempfile.mkstemp",
        "tempfile.mkdtemp",
    }
)
_LIST_EVENTS = frozenset({"os.listdir", "os.scandir"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """Something the parse of uploaded definitions is not allowed to do."""


class DefinitionInvalid(Exception):
    """Definitions that load but cannot be turned into registry objects."""


def _not_allowed(what: str) -> SandboxViolation:
    return SandboxViolation(f"{what} is not allowed while parsing uploaded definitions")


def _install_audit_hook(
    *, allowed_writes: frozenset[str], deny_read: tuple[str, ...], allow_read: tuple[str, ...]
) -> None:
    """Refuse processes, network, writes, signals, ctypes and secret reads from here on (see module doc)."""
    # Everything the hook uses is bound here: the definitions can rebind this module's globals (import __main__).
    own_proc = (f"/proc/{os.getpid()}/", "/proc/self/", "/proc/thread-self/")
    realpath, fsdecode = os.path.realpath, os.fsdecode
    write_flags, not_allowed = _WRITE_FLAGS, _not_allowed
    list_events, write_events, process_events = _LIST_EVENTS, _WRITE_EVENTS, _PROCESS_EVENTS
    network_events, signal_events = _NETWORK_EVENTS, _SIGNAL_EVENTS
    limit_events, introspection_events = _LIMIT_EVENTS, _INTROSPECTION_EVENTS
    roots = sorted([(r, False) for r in deny_read] + [(r, True) for r in allow_read], key=lambda x: -len(x[0]))

    def readable(path: str) -> bool:
        if path.startswith("/proc/"):
            head, _, rest = path[len("/proc/") :].partition("/")
            if head.isdigit() and not path.startswith(own_proc):
                return False  # another process: its environ, cmdline, memory
            if rest.split("/", 1)[0] == "root":
                return False  # /proc/self/root/...: the whole filesystem again
        for root, allowed in roots:  # most specific root first
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return allowed
        return True

    def real(raw: Any) -> str | None:
        if isinstance(raw, int):
            return None  # an already open descriptor
        try:
            return realpath(fsdecode(raw))
        except (TypeError, ValueError):
            return None

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path = real(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & write_flags
            )
            if writing and path not in allowed_writes:
                raise not_allowed("writing files")
            if not readable(path):
                raise not_allowed(f"reading {path!r}")
        elif event in list_events:
            path = real(args[0] if args and args[0] is not None else ".")
            if path is not None and not readable(path):
                raise not_allowed(f"listing {path!r}")
        elif event == "os.rename":
            if real(args[0]) not in allowed_writes or real(args[1]) not in allowed_writes:
                raise not_allowed("writing files")
        elif event in write_events:
            raise not_allowed("writing files")
        elif event in process_events:
            raise not_allowed("starting processes")
        elif event in network_events:
            raise not_allowed("network access")
        elif event in signal_events:
            raise not_allowed("sending signals")
        elif event.startswith("ctypes."):
            raise not_allowed("native code (ctypes)")
        elif event in limit_events:
            raise not_allowed("changing resource limits")
        elif event in introspection_events:
            raise not_allowed("inspecting the interpreter")

    sys.addaudithook(hook)
    # _posixsubprocess.fork_exec raises no audit event of its own: take it away.
    import _posixsubprocess

    def _fork_exec(*_args: Any, **_kwargs: Any) -> Any:
        raise _not_allowed("starting processes")

    _posixsubprocess.fork_exec = _fork_exec


# --- Messages: the user's file and line, no paths of this machine -----------------------------------


def _scrub_prefixes(repo: Path) -> list[str]:
    prefixes = {str(repo) + "/"}
    prefixes.update(p.rstrip("/") + "/" for p in site.getsitepackages() if p)
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        prefixes.add(sysconfig.get_path(key).rstrip("/") + "/")
    prefixes.update(p.rstrip("/") + "/" for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    prefixes.add(str(Path(__file__).resolve().parent) + "/")
    return sorted(prefixes, key=len, reverse=True)


def _clean(text: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        text = text.replace(prefix, "")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _relative(filename: str | None, repo: Path) -> str | None:
    if not filename or not os.path.isabs(filename):  # "<frozen os>", "<string>"
        return None
    try:
        return Path(filename).resolve().relative_to(repo).as_posix()
    except (ValueError, OSError):
        return None


def _error_record(exc: BaseException, repo: Path, prefixes: list[str]) -> dict[str, Any]:
    """What went wrong, where in the user's code (innermost frame inside the repo)."""
    file: str | None = None
    line: int | None = None
    last_frame = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        last_frame = frame
        rel = _relative(frame.f_code.co_filename, repo)
        if rel is not None:
            file, line = rel, lineno
    if isinstance(exc, SyntaxError) and _relative(exc.filename, repo):
        file, line = _relative(exc.filename, repo), exc.lineno
    type_name = "PermissionError" if isinstance(exc, SandboxViolation) else type(exc).__name__
    if isinstance(exc, MemoryError):
        return {"status": "error", "kind": "memory", "type": type_name, "message": "", "file": file, "line": line}
    if isinstance(exc, SyntaxError):
        message = exc.msg
    elif isinstance(exc, SystemExit):
        message = f"the definitions called sys.exit({exc.code!r})"
    else:
        try:
            message = str(exc)
        except Exception:  # noqa: BLE001 (a hostile __str__)
            message = ""
    if isinstance(exc, DefinitionInvalid):
        kind = "invalid"
    else:
        kind = "exception"
        if type_name == "TypeCheckError" and 'argument "dtype"' in message:
            # Feast checks Field(dtype=...) with typeguard; its message is a multi-line union dump.
            got = re.search(r'argument "dtype" \(([^)]*)\)', message)
            type_name = "unknown dtype"
            message = (
                f"a Field's dtype must be a type from feast.types (e.g. Float32, Int64, String), "
                f"not {got.group(1) if got else 'this value'}"
            )
        elif (
            isinstance(exc, KeyError)
            and last_frame is not None
            and last_frame.f_code.co_name == "__getitem__"
            and last_frame.f_globals.get("__name__") == "os"
        ):
            message += " (definitions run without environment variables)"
        elif isinstance(exc, OSError) and exc.errno == 27:  # EFBIG: RLIMIT_FSIZE
            message += " (files written while parsing are size-limited)"
    return {
        "status": "error",
        "kind": kind,
        "type": type_name,
        "message": _clean(message, prefixes),
        "file": file,
        "line": line,
    }


# --- Parsing ---------------------------------------------------------------------------------------


def _module_conflicts(repo: Path, files: Iterable[Path], module_name: Callable[[Path], str]) -> None:
    """A repo file whose module name is taken by an installed module would be silently skipped by Feast
    (importlib returns the installed one): say so instead."""
    import importlib.util

    for path in files:
        top = module_name(path).split(".")[0]
        spec = importlib.util.find_spec(top) if top not in sys.modules else None
        origin = sys.modules[top].__spec__ if top in sys.modules else spec
        if origin is None:
            continue
        locations = [origin.origin] if origin.origin else list(origin.submodule_search_locations or [])
        if not any(loc and _relative(loc, repo) is not None for loc in locations):
            rel = path.relative_to(repo).as_posix()
            raise DefinitionInvalid(
                f"'{rel}' cannot be imported as '{module_name(path)}': the Python module '{top}' already "
                f"exists, so Feast would load that one and `feast apply` would silently ignore this file's "
                f"definitions (rename the file or directory)"
            )


def _definition_lines(path: Path) -> dict[str, int]:
    """Top-level names a file assigns or defines, with their line."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return {}
    lines: dict[str, int] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            lines.setdefault(node.name, node.lineno)
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    lines.setdefault(name.id, node.lineno)
    return lines


def _parse(repo: Path, project: str) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    from feast.feature_view import DUMMY_ENTITY_NAME
    from feast.repo_operations import get_repo_files, parse_repo, py_path_to_module

    files = get_repo_files(repo)
    _module_conflicts(repo, files, py_path_to_module)
    contents = parse_repo(repo)

    groups: list[tuple[str, str, list[Any]]] = [
        ("entity", "Entity", [e for e in contents.entities if e.name != DUMMY_ENTITY_NAME]),
        ("data_source", "DataSource", list(contents.data_sources)),
        ("feature_view", "FeatureView", list(contents.feature_views)),
        ("feature_view", "StreamFeatureView", list(contents.stream_feature_views)),
        ("feature_view", "OnDemandFeatureView", list(contents.on_demand_feature_views)),
        ("feature_service", "FeatureService", list(contents.feature_services)),
    ]
    warnings = []
    for label, objects in (
        ("label view", contents.label_views),
        ("permission", contents.permissions),
        ("project object", contents.projects),
    ):
        if objects:
            names = ", ".join(sorted(repr(getattr(o, "name", "?")) for o in objects))
            warnings.append(f"ignored {len(objects)} {label}(s) ({names}): uploads do not change them")

    # Where each object is defined: the first parsed file that assigns it at top level.
    wanted = {id(obj) for _, _, objects in groups for obj in objects}
    located: dict[int, tuple[str, int]] = {}
    for path in files:
        module = sys.modules.get(py_path_to_module(path))
        if module is None:
            continue
        rel = path.relative_to(repo).as_posix()
        for name, lineno in _definition_lines(path).items():
            obj = module.__dict__.get(name)
            if obj is not None and id(obj) in wanted and id(obj) not in located:
                located[id(obj)] = (rel, lineno)
    # A data source written inline in a view is located at the view.
    for _, _, objects in groups:
        for obj in objects:
            for attr in ("batch_source", "stream_source"):
                inner = getattr(obj, attr, None)
                if inner is not None and id(inner) not in located and id(obj) in located:
                    located[id(inner)] = located[id(obj)]

    records = []
    for kind, proto_type, objects in groups:
        for obj in objects:
            file, line = located.get(id(obj), (None, None))
            where = f" ({file}:{line})" if file else ""
            if proto_type == "OnDemandFeatureView":
                _infer_on_demand(obj, where, warnings)
            try:
                proto = obj.to_proto()
            except Exception as exc:
                raise DefinitionInvalid(
                    f"{kind.replace('_', ' ')} '{obj.name}'{where} cannot be serialised: {type(exc).__name__}: {exc}"
                ) from exc
            if "spec" in proto.DESCRIPTOR.fields_by_name:
                proto.spec.project = project
            else:
                proto.project = project
            records.append(
                {
                    "kind": kind,
                    "proto_type": proto_type,
                    "name": obj.name,
                    "proto": base64.b64encode(proto.SerializeToString(deterministic=True)).decode(),
                    "file": file,
                    "line": line,
                }
            )
    return [p.relative_to(repo).as_posix() for p in files], records, warnings


def _infer_on_demand(view: Any, where: str, warnings: list[str]) -> None:
    """Feast's apply-time schema inference of an on-demand view (`infer_features`: it runs the transformation
    on random input), here in the sandbox, so the plan holds the fields Feast will store. The portal never
    runs uploaded code, so it cannot infer them itself."""
    try:
        view.infer_features()
    except Exception as exc:
        message = f"{type(exc).__name__}: {str(exc)[:300]}"
        if not view.features:
            raise DefinitionInvalid(
                f"on-demand view '{view.name}'{where} declares no schema and Feast cannot infer one: {message}"
            ) from exc
        warnings.append(
            f"the declared schema of on-demand view '{view.name}' could not be checked against its "
            f"transformation here ({message}); Feast checks it again when the change is applied"
        )


def _network_isolated() -> bool:
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def _udf_rehydrate() -> Any:
    """feast/transformation/udf_rehydrate.py, loaded alone: importing the feast package costs seconds."""
    import importlib.util

    feast_spec = importlib.util.find_spec("feast")
    if feast_spec is None or not feast_spec.submodule_search_locations:
        raise ImportError("feast is not installed")
    path = Path(next(iter(feast_spec.submodule_search_locations))) / "transformation" / "udf_rehydrate.py"
    spec = importlib.util.spec_from_file_location("feast_udf_rehydrate_check", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What a default value or an annotation of a transformation may be: names, attributes, constants and
# containers of them. Anything else (a call, a lambda, an f-string) would run when the text is loaded.
_INERT = (ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Load, ast.UnaryOp, ast.USub)


def _shape_error(rehydrate: Any, name: str, source: str) -> str | None:
    """None when the text (decorators stripped, as Feast does) is one plain definition of `name`: loading it then
    runs no code (Feast loads it in every process that builds the view, the portal's worker included)."""
    try:
        tree = ast.parse(rehydrate._strip_leading_decorators(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return f"its source must be the definition of {name!r} alone, with no other statement"
    func = tree.body[0]
    if func.name != name:
        return f"its source defines {func.name!r}, not {name!r}"
    args = func.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    evaluated = [*args.defaults, *(d for d in args.kw_defaults if d is not None), func.returns]
    evaluated += [a.annotation for a in every if a is not None]
    for node in evaluated:
        if node is not None and not all(isinstance(n, _INERT) for n in ast.walk(node)):
            return "a default value or an annotation runs code when the source is loaded (use constants)"
    return None


def _check_udf(rehydrate: Any, name: str, source: str) -> str | None:
    """None when `source` alone defines a callable `name` in Feast's namespace; else what went wrong."""
    namespace = rehydrate._exec_namespace()
    try:
        code = compile(rehydrate._strip_leading_decorators(source), f"<transformation {name}>", "exec")
        exec(code, namespace)  # noqa: S102 (the reviewed text, in the jail, as Feast will run it)
    except BaseException as exc:  # noqa: BLE001 (the text may raise anything, SystemExit included)
        return f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]
    if not callable(namespace.get(name)):
        return f"it does not define a function named {name!r}"
    return None


def udf_main(argv: list[str]) -> int:
    if len(argv) != 5:
        sys.stderr.write("usage: python -I _parse_worker.py --udf <udfs file> <result file> <policy file>\n")
        return 2
    udfs = json.loads(Path(argv[2]).read_text())
    result = Path(argv[3])
    policy: dict[str, Any] = json.loads(Path(argv[4]).read_text())
    partial = result.with_name(result.name + ".partial")
    sys.dont_write_bytecode = True
    rehydrate = _udf_rehydrate()
    rehydrate._exec_namespace()  # pandas and numpy load before the hook
    _install_audit_hook(
        allowed_writes=frozenset({str(partial), str(result)}),
        deny_read=tuple(os.path.realpath(p) for p in policy.get("deny_read", [])),
        allow_read=tuple(os.path.realpath(p) for p in policy.get("allow_read", [])),
    )
    # Every shape first, before any text runs (a text that runs could change how the next one is checked).
    errors = [_shape_error(rehydrate, str(u["name"]), str(u["source"])) for u in udfs]
    errors = [e or _check_udf(rehydrate, str(u["name"]), str(u["source"])) for e, u in zip(errors, udfs, strict=True)]
    records: list[dict[str, Any]] = [{"status": "ok"}]
    records += [{"index": index, "error": error} for index, error in enumerate(errors)]
    with open(partial, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(record) + "\n" for record in records)
    os.replace(partial, result)
    return 0


def preload() -> None:
    """What every parse imports before the uploaded code runs, imported once by the template process
    (_zygote.py) so that its children start with it loaded."""
    import feast.repo_operations
    import feast.types  # noqa: F401

    _udf_rehydrate()._exec_namespace()


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--udf":
        return udf_main(argv)
    if len(argv) not in (4, 5):
        sys.stderr.write("usage: python -I _parse_worker.py <repo dir> <result file> <project> [<policy file>]\n")
        return 2
    repo = Path(argv[1]).resolve()
    result = Path(argv[2]).resolve()
    project = argv[3]
    policy: dict[str, Any] = json.loads(Path(argv[4]).read_text()) if len(argv) == 5 else {}
    partial = result.with_name(result.name + ".partial")
    prefixes = _scrub_prefixes(repo)
    sys.dont_write_bytecode = True  # -I ignores PYTHONDONTWRITEBYTECODE
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: an OSError, not a silent death

    def write(lines: list[dict[str, Any]]) -> None:
        with open(partial, "w", encoding="utf-8") as out:
            for record in lines:
                out.write(json.dumps(record) + "\n")
        os.replace(partial, result)

    try:
        # Every backend loads here, before the user's code runs (and before the audit hook).
        import feast.repo_operations
        import feast.types  # noqa: F401
    except BaseException as exc:  # noqa: BLE001 (reported as the result)
        record = _error_record(exc, repo, prefixes)
        if record["kind"] != "memory":
            record.update(kind="internal", message=_clean(f"cannot import feast: {exc!r}", prefixes))
        write([record])
        return 0

    network_isolated = _network_isolated()
    os.chdir(repo)
    sys.path.append(str(repo))  # as `feast apply` does
    allow_read = [str(repo), str(result.parent), *policy.get("allow_read", [])]
    allow_read += [sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()]
    _install_audit_hook(
        allowed_writes=frozenset({str(partial), str(result)}),
        deny_read=tuple(os.path.realpath(p) for p in policy.get("deny_read", [])),
        allow_read=tuple(os.path.realpath(p) for p in allow_read),
    )
    try:
        files, records, warnings = _parse(repo, project)
    except BaseException as exc:  # noqa: BLE001 (the user's code may raise anything, SystemExit included)
        write([_error_record(exc, repo, prefixes)])
    else:
        header = {"status": "ok", "files": files, "warnings": warnings, "network_isolated": network_isolated}
        write([header, *records])
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the definitions may have closed or replaced it
            stream.flush()
    os._exit(code)  # no interpreter shutdown: threads or atexit handlers the definitions left cannot hang it
