"""catalog.feast_gateway.sandbox: uploaded feature repos are checked, extracted and parsed in isolation.

Cases refused from the archive alone run in-process, with subprocess.Popen (and, before extraction,
tempfile.mkdtemp) made to fail: they must never start the parser. Everything that reaches the parser's
subprocess (the hostile definitions and the good uploads) runs in one test, concurrently, one subtest per
case: each subprocess spends ~3.5 s of CPU importing feast, so running them one after another would take
minutes.
"""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from catalog import feast_gateway
from catalog.exceptions import InvalidInput, UploadRejected, UploadSandboxUnavailable
from catalog.feast_gateway import isolation, sandbox, upload_archive
from catalog.feast_gateway.sandbox import ParsedRepo
from portal.preflight import upload_isolation
from tests.governance.hostile_cases import (
    BASE,
    ESCAPE_CASES,
    HOSTILE_CASES,
    EscapeTargets,
    HostileCase,
    customize_files,
    escape_upload,
    leftovers,
    tar_bytes,
    udf_swap_upload,
    zip_bytes,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "upload_project"
ARCHIVE_CASES = [c for c in HOSTILE_CASES if c.stage != "parse"]
PARSE_CASES = [c for c in HOSTILE_CASES if c.stage == "parse"]
PARENT_SECRETS = {
    "DJANGO_SECRET_KEY": "parent-django-secret-value",
    "DATABASE_URL": "postgresql://portal:parent-db-password@db:5432/portal",
    "REDIS_URL": "redis://:parent-redis-password@redis:6379/0",
    "AWS_SECRET_ACCESS_KEY": "parent-aws-secret-value",
    "GITHUB_TOKEN": "parent-github-token-value",
}
# What the worker's environment may hold: what sandbox builds, plus the thread-pool sizes the worker sets itself.
WORKER_ENV = {
    "PATH",
    "LANG",
    "HOME",
    "TMPDIR",
    "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    "ARROW_NUM_THREADS",
    "PROMETHEUS_MULTIPROCESS_DIR",  # set by feast.metrics when imported (a directory under TMPDIR)
    "PROMETHEUS_MULTIPROC_DIR",
}


def test_the_case_list() -> None:
    ids = [c.id for c in HOSTILE_CASES]
    assert len(ids) == len(set(ids))
    assert len(HOSTILE_CASES) >= 22
    assert {c.stage for c in HOSTILE_CASES} == {"archive", "extract", "parse"}
    escapes = {c.id for c in ESCAPE_CASES}
    assert len(escapes) == len(ESCAPE_CASES)
    # The list: the realpath escape, patching os / posixpath / builtins.open / io.open, ctypes,
    # /proc/self, native file access, writes to /tmp and site-packages and a .pth drop (in every case).
    assert {
        "realpath_code_swap",
        "patch_os_module",
        "patch_builtins_and_io_open",
        "ctypes_libc",
        "native_file_access",
        "proc_self",
        "tmp_and_site_packages_writes",
    } <= escapes
    assert issubclass(UploadRejected, InvalidInput)


def test_public_names_and_settings(settings: Any) -> None:
    assert feast_gateway.parse_upload is sandbox.parse_upload
    assert feast_gateway.ParsedRepo is ParsedRepo
    assert settings.GOVERNANCE_UPLOAD_MAX_BYTES == 5 * 1024 * 1024
    assert settings.GOVERNANCE_UPLOAD_MAX_FILES == 500
    assert settings.GOVERNANCE_UPLOAD_MAX_UNCOMPRESSED == 20 * 1024 * 1024
    assert settings.GOVERNANCE_PARSE_TIMEOUT_SECONDS == 60
    assert settings.GOVERNANCE_PARSE_MEMORY_MB == 2048
    settings.GOVERNANCE_PARSE_TIMEOUT_SECONDS = 30
    assert sandbox.UploadLimits.from_settings().timeout == 30
    assert sandbox.UploadLimits.from_settings({"GOVERNANCE_PARSE_TIMEOUT_SECONDS": 15}).timeout == 15


# --- Refused before the parser runs ----------------------------------------------------------------


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's directory for the test: the sandbox's temporary directories must all be gone afterwards."""
    feast_gateway.feast_api()  # importing feast makes a feast_metrics_* directory: not in the scratch one
    isolation.isolation_check()  # the template process (and its directory) outlives the test
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@pytest.mark.parametrize("case", ARCHIVE_CASES, ids=lambda c: c.id)
def test_refused_without_running_anything(
    case: HostileCase, tmp_path: Path, scratch_tmp: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.settings.items():
        setattr(settings, name, value)

    def must_not_run(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError(f"{case.id}: got past the archive checks")

    monkeypatch.setattr(subprocess, "Popen", must_not_run)
    monkeypatch.setattr(isolation, "run", must_not_run)
    if case.stage == "archive":
        monkeypatch.setattr(tempfile, "mkdtemp", must_not_run)
    data, filename = case.build(tmp_path)
    started = time.monotonic()
    with pytest.raises(UploadRejected) as excinfo:
        feast_gateway.parse_upload(data, filename=filename, project=PROJECT)
    message = str(excinfo.value)
    assert case.message in message
    assert message.startswith("upload rejected: ")
    assert time.monotonic() - started < 5
    assert not list(scratch_tmp.iterdir())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("features.py", "features.py"),
        ("./repo//views/./x.py", "repo/views/x.py"),
        ("repo\\views\\x.py", "repo/views/x.py"),
        ("./", ""),
    ],
)
def test_member_paths_are_normalised(raw: str, expected: str) -> None:
    assert upload_archive._member_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a\x00b.py", "has a NUL byte in its name"),
        ("..\\..\\x.py", "escapes the archive"),
        ("a/../b.py", "has a '..' component"),
        ("//server/share/x.py", "is an absolute path"),
        ("c:x.py", "starts with a drive letter"),
        ("x" * 1100, "longer than 1024 characters"),
        ("bad\u202ename.py", "control characters or invalid text"),
    ],
)
def test_unsafe_member_names(raw: str, message: str) -> None:
    with pytest.raises(UploadRejected, match=message):
        upload_archive._member_path(raw)


def test_extraction_counts_bytes_whatever_the_header_says(tmp_path: Path) -> None:
    """A member that yields more than its header declared is stopped at the limit while being written."""
    limits = sandbox.UploadLimits(
        max_bytes=1024, max_files=10, max_uncompressed=1024 * 1024, timeout=60, memory_mb=2048
    )
    liar = upload_archive._Member("features.py", "file", size=10, open=lambda: io.BytesIO(bytes(3 * 1024 * 1024)))
    with pytest.raises(UploadRejected, match="the archive expands to more than 1 MB"):
        sandbox._extract([upload_archive._Checked("features.py", liar)], tmp_path, limits)
    assert (tmp_path / "features.py").stat().st_size <= 1024 * 1024


def test_files_feast_does_not_import_are_skipped_never_extracted(tmp_path: Path) -> None:
    """A repo folder as teams zip it: data and notebooks beside the definitions are listed, not written."""
    limits = sandbox.UploadLimits(max_bytes=1 << 20, max_files=10, max_uncompressed=1 << 20, timeout=60, memory_mb=2048)
    data = zip_bytes({"repo/features.py": BASE, "repo/data/x.parquet": b"PAR1", "repo/run.sh": "rm -rf /\n"})
    warnings: list[str] = []
    with upload_archive._open_archive(data, "repo.zip", limits) as archive:
        members = upload_archive._checked_members(archive, limits, warnings)
        written = upload_archive._extract(members, tmp_path, limits)
    assert written == {"features.py"}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["features.py"]
    assert (
        warnings[0] == "skipped 2 file(s) Feast does not import (not extracted): 'repo/data/x.parquet', 'repo/run.sh'"
    )


# --- Parsed in the subprocess ----------------------------------------------------------------------

DEMO_OBJECTS = [
    ("entity", "Entity", "department_id"),
    ("entity", "Entity", "employee_id"),
    ("data_source", "DataSource", "department_stats"),
    ("data_source", "DataSource", "employee_activity_batch"),
    ("data_source", "DataSource", "employee_activity_push"),
    ("data_source", "DataSource", "employee_attrition"),
    ("data_source", "DataSource", "scoring_request"),
    ("feature_view", "FeatureView", "department_features"),
    ("feature_view", "FeatureView", "employee_activity"),
    ("feature_view", "FeatureView", "employee_features"),
    ("feature_view", "OnDemandFeatureView", "employee_risk_signals"),
    ("feature_service", "FeatureService", "attrition_model_v1"),
    ("feature_service", "FeatureService", "attrition_model_v2"),
]


def _proto(repo: ParsedRepo, kind: str, name: str) -> Any:
    obj = next(o for o in repo.objects if o.kind == kind and o.name == name)
    return getattr(feast_gateway.feast_api(), obj.proto_type).FromString(obj.proto)


def _spec(message: Any) -> Any:
    return message.spec if "spec" in message.DESCRIPTOR.fields_by_name else message


def _demo_zip(_: Path) -> tuple[bytes, str]:
    repo = ROOT / "feature_repo"
    files = {name: (repo / name).read_text() for name in ("features.py", "feature_store.yaml", "__init__.py")}
    return zip_bytes(files), "feature_repo.zip"


def check_demo(repo: ParsedRepo) -> None:
    assert [(o.kind, o.proto_type, o.name) for o in repo.objects] == DEMO_OBJECTS
    assert repo.files == ["features.py"]
    assert repo.warnings == []
    view = _proto(repo, "feature_view", "employee_features")
    assert [f.name for f in view.spec.features] == [
        "tenure",
        "salary_band",
        "overtime",
        "promotion_stagnation",
        "career_velocity",
        "overall_satisfaction",
    ]
    assert list(view.spec.entities) == ["employee_id"]
    assert view.spec.tags["materialize_filter"] == "is_active == 1"
    v2 = _proto(repo, "feature_service", "attrition_model_v2")
    assert [p.feature_view_name for p in v2.spec.features] == [
        "employee_features",
        "department_features",
        "employee_risk_signals",
    ]
    for obj in repo.objects:
        assert _spec(getattr(feast_gateway.feast_api(), obj.proto_type).FromString(obj.proto)).project == PROJECT


NESTED: dict[str, bytes | str] = {
    "feature_repo/feature_store.yaml": "project: ignored\nregistry: data/registry.db\nprovider: local\n",
    "feature_repo/README.md": "# Drivers\n",
    # What a team's repo folder holds besides definitions: skipped, listed, never extracted.
    "feature_repo/data/driver_stats.parquet": b"PAR1" + bytes(64),
    "feature_repo/notebooks/explore.ipynb": "{}",
    "feature_repo/__pycache__/services.cpython-311.pyc": b"\x6f\x0d\x0d\x0a" + bytes(12),
    "feature_repo/entities/__init__.py": "",
    "feature_repo/entities/people.py": 'from feast import Entity, ValueType\n\ndriver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)\n',
    "feature_repo/sources/hr.py": 'from feast import FileSource\n\nsource = FileSource(name="driver_source", path="data/d.parquet", timestamp_field="ts")\n',
    "feature_repo/views/driver.py": textwrap.dedent(
        """\
        from datetime import timedelta

        from feast import Entity, FeatureService, FeatureView, Field, FileSource
        from feast.types import Float32, Int64

        from entities.people import driver
        from sources.hr import source

        driver_stats = FeatureView(
            name="driver_stats",
            entities=[driver],
            ttl=timedelta(days=1),
            schema=[Field(name="trips", dtype=Int64), Field(name="rating", dtype=Float32)],
            source=source,
        )
        # A view on an entity this upload does not declare (it may already be in the registry).
        orders = FeatureView(
            name="orders",
            entities=[Entity(name="customer", join_keys=["customer_id"])],
            schema=[Field(name="count", dtype=Int64)],
            source=source,
        )
        # A service using a view this upload does not declare (built inline, not at module level).
        _existing = FeatureView(name="existing_view", entities=[driver], schema=[Field(name="a", dtype=Int64)], source=source)
        driver_service = FeatureService(name="driver_service", features=[driver_stats, _existing])
        del _existing
        """
    ),
}


ENV_DUMP = textwrap.dedent(
    """\
    import os
    import sys

    from feast import Entity

    # 50 MB on stdout: read by the parent into a bounded buffer and dropped.
    line = "y" * 1023 + "\\n"
    for _ in range(50 * 1024):
        sys.stdout.write(line)

    env_names = Entity(name="env_names", join_keys=["k"], description=repr(sorted(os.environ)))
    env_values = Entity(name="env_values", join_keys=["k"], description=repr(sorted(os.environ.values())))
    """
)


def _nested_targz(_: Path) -> tuple[bytes, str]:
    return tar_bytes({**NESTED, "feature_repo/env_dump.py": ENV_DUMP}, gz=True), "feature_repo.tar.gz"


NOT_DECLARED = f"which this upload does not declare: it must already exist in project '{PROJECT}'"


def check_nested(repo: ParsedRepo) -> None:
    """A zipped folder, definitions in packages importing each other, partial references, pycache skipped."""
    assert repo.files == ["entities/people.py", "env_dump.py", "sources/hr.py", "views/driver.py"]
    assert [(o.kind, o.name) for o in repo.objects] == [
        ("entity", "driver"),
        ("entity", "env_names"),
        ("entity", "env_values"),
        ("data_source", "driver_source"),
        ("feature_view", "driver_stats"),
        ("feature_view", "orders"),
        ("feature_service", "driver_service"),
    ]
    assert repo.warnings == [
        "ignored 1 member(s) under __pycache__/ or __MACOSX/, or .DS_Store files",
        (
            "skipped 2 file(s) Feast does not import (not extracted): 'feature_repo/data/driver_stats.parquet', "
            "'feature_repo/notebooks/explore.ipynb'"
        ),
        # no "every file is under 'feature_repo/'": with its feature_store.yaml it is plainly the repo folder
        f"feature service 'driver_service' uses feature view 'existing_view', {NOT_DECLARED}",
        f"feature view 'orders' uses entity 'customer', {NOT_DECLARED}",
    ]


def _rich_zip(_: Path) -> tuple[bytes, str]:
    """The rich test repo's definitions (stream view, Kafka source), and the escape attempts (one subprocess)."""
    rich = (ROOT / "tests" / "repos" / "rich" / "features.py").read_text()
    return zip_bytes({"features.py": rich, "escape.py": ESCAPES}), "rich.zip"


def check_rich(repo: ParsedRepo) -> None:
    kinds = {(o.proto_type, o.name) for o in repo.objects}
    assert ("StreamFeatureView", "driver_event_counts") in kinds
    assert ("OnDemandFeatureView", "trip_pricing") in kinds
    assert ("DataSource", "driver_events") in kinds  # a Kafka source: the portal need not govern its kind
    assert ("FeatureService", "pricing") in kinds
    sfv = _proto(repo, "feature_view", "driver_event_counts")
    assert sfv.spec.project == PROJECT


def check_env(repo: ParsedRepo) -> None:
    """The worker's environment holds none of the parent's variables (secrets set in it by the test)."""
    names = ast.literal_eval(_proto(repo, "entity", "env_names").spec.description)
    assert set(names) <= WORKER_ENV, set(names) - WORKER_ENV
    values = _proto(repo, "entity", "env_values").spec.description
    everything = b"".join(o.proto for o in repo.objects).decode("utf-8", "replace")
    for name, value in PARENT_SECRETS.items():
        assert name not in names
        assert value not in values
        assert value not in everything


# One upload tries every way out the worker's audit hook refuses, each attempt caught and reported.
ESCAPES = textwrap.dedent(
    f"""\
    import ctypes
    import gc
    import json
    import os
    import resource
    import socket
    import subprocess

    from feast import Entity

    results = {{}}


    def attempt(name, action):
        try:
            action()
            results[name] = "allowed"
        except Exception as exc:
            results[name] = f"{{type(exc).__name__}}: {{exc}}"


    attempt("fork", os.fork)
    attempt("subprocess", lambda: subprocess.run(["true"]))
    attempt("posix_spawn", lambda: os.posix_spawn("/bin/true", ["true"], {{}}))
    attempt("connect", lambda: socket.create_connection(("127.0.0.1", 5432), timeout=2))
    attempt("dns", lambda: socket.getaddrinfo("example.com", 443))
    attempt("parent_environ", lambda: open(f"/proc/{{os.getppid()}}/environ").read())
    attempt("secret_mount", lambda: open("/run/secrets/portal/DATABASE_URL").read())
    attempt("portal_source", lambda: open("{ROOT / "portal" / "settings.py"}").read())
    attempt("list_portal", lambda: os.listdir("{ROOT}"))
    attempt("write_tmp", lambda: open("/tmp/pwned", "w").write("x"))
    attempt("write_repo", lambda: open("new.py", "w").write("x"))
    attempt("os_open_write", lambda: os.open("/tmp/pwned2", os.O_WRONLY | os.O_CREAT))
    attempt("mkdir", lambda: os.mkdir("/tmp/pwned-dir"))
    attempt("remove_own_file", lambda: os.remove("escape.py"))
    attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
    attempt("ctypes", lambda: ctypes.CDLL(None).getpid())
    attempt("raise_rlimit", lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)))
    attempt("gc_walk", gc.get_objects)


    def rebind_hook_globals_then_fork():
        import __main__  # the worker

        __main__._PROCESS_EVENTS = frozenset()
        os.fork()


    attempt("rebind_hook_globals", rebind_hook_globals_then_fork)

    report = Entity(name="escape_report", join_keys=["k"], description=json.dumps(results))
    """
)


def check_escapes(repo: ParsedRepo) -> None:
    results = json.loads(_proto(repo, "entity", "escape_report").spec.description)
    assert len(results) == 19
    refused = {name: r for name, r in results.items() if "is not allowed while parsing uploaded definitions" in r}
    assert refused == results, {name: r for name, r in results.items() if name not in refused}
    assert (ROOT / "portal" / "settings.py").exists() and not Path("/tmp/pwned").exists()


# Good uploads (name -> builder), and the checks made on each (check name -> upload, check).
UPLOADS: dict[str, Callable[[Path], tuple[bytes, str]]] = {
    "demo_zip": _demo_zip,
    "nested_tar_gz": _nested_targz,
    "rich_with_escapes_zip": _rich_zip,
}
CHECKS: dict[str, tuple[str, Callable[[ParsedRepo], None]]] = {
    "demo_repo_zip": ("demo_zip", check_demo),
    "nested_tar_gz_with_partial_references": ("nested_tar_gz", check_nested),
    "no_parent_secrets_and_50mb_stdout": ("nested_tar_gz", check_env),
    "rich_repo_stream_view": ("rich_with_escapes_zip", check_rich),
    "escape_attempts_refused": ("rich_with_escapes_zip", check_escapes),
}


def _outcome(data: bytes, filename: str, limits: sandbox.UploadLimits) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        result: Any = sandbox._parse_upload(data, filename=filename, project=PROJECT, limits=limits)
    except Exception as exc:  # noqa: BLE001 (the outcome is asserted per case)
        result = exc
    return result, time.monotonic() - started


def test_parsed_in_the_sandbox(
    subtests: pytest.Subtests, tmp_path: Path, scratch_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PARENT_SECRETS.items():
        monkeypatch.setenv(name, value)
    jobs: dict[str, tuple[bytes, str, sandbox.UploadLimits]] = {}
    for case in PARSE_CASES:
        (tmp_path / case.id).mkdir()
        jobs[case.id] = (*case.build(tmp_path / case.id), sandbox.UploadLimits.from_settings(case.settings))
    for name, build in UPLOADS.items():
        (tmp_path / name).mkdir()
        jobs[name] = (*build(tmp_path / name), sandbox.UploadLimits.from_settings())
    # The slowest first (the infinite loop runs to its timeout), then the rest on the free cores.
    order = sorted(jobs, key=lambda k: k != "infinite_loop")
    with ThreadPoolExecutor(max_workers=max(2, min(4, (os.cpu_count() or 2) + 1))) as pool:
        futures = {key: pool.submit(_outcome, *jobs[key]) for key in order}
    outcomes = {key: future.result() for key, future in futures.items()}

    for case in PARSE_CASES:
        with subtests.test(msg=case.id):
            outcome, seconds = outcomes[case.id]
            assert isinstance(outcome, UploadRejected), f"{case.id}: expected a rejection, got {outcome!r}"
            message = str(outcome)
            assert case.message in message, message
            assert len(message) < 600 and "Traceback" not in message
            assert str(ROOT) not in message and "site-packages" not in message
            if case.id == "infinite_loop":
                assert 10 <= seconds < 25
    for name, (upload, check) in CHECKS.items():
        with subtests.test(msg=name):
            outcome, _ = outcomes[upload]
            assert isinstance(outcome, ParsedRepo), f"{upload}: {outcome}"
            check(outcome)
    assert not list(scratch_tmp.iterdir()), "a temporary directory was left behind"


def test_definitions_are_checked_again_on_the_portal_side(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scratch_tmp: Path
) -> None:
    """What the worker writes is untrusted (the definitions ran in that process): a forged result is refused."""
    limits = sandbox.UploadLimits.from_settings()

    def forged(work: Path, repo: Path, project: str, limits: sandbox.UploadLimits) -> sandbox._WorkerResult:
        return sandbox._WorkerResult(
            header={"status": "ok", "files": ["features.py", "/etc/passwd"], "warnings": [], "network_isolated": True},
            records=[{"kind": "entity", "proto_type": "FeatureView", "name": "x", "proto": "AAAA"}],
        )

    monkeypatch.setattr(sandbox, "_run_worker", forged)
    with pytest.raises(UploadRejected, match="parsing produced an unreadable result"):
        sandbox._parse_upload(zip_bytes({"features.py": BASE}), filename="x.zip", project=PROJECT, limits=limits)
    assert not list(scratch_tmp.iterdir())


# --- Escapes: the operating system is the boundary -------------------------------------------------


def _everything_shown(outcome: Any, caplog: pytest.LogCaptureFixture) -> str:
    """All a proposer or an operator could read of one upload: the objects (plan input), warnings, the refusal
    message, and the portal's logs (the worker's output is logged when it ends without a result)."""
    parts = [caplog.text]
    if isinstance(outcome, ParsedRepo):
        parts += [repr(outcome.warnings), repr(outcome.files)]
        parts += [o.proto.decode("utf-8", "replace") for o in outcome.objects]
    else:
        parts.append(repr(outcome))
    return "\n".join(parts)


def _report(outcome: Any) -> dict[str, str]:
    return dict(json.loads(_proto(outcome, "entity", "escape_report").spec.description))


def test_escapes_are_stopped_by_the_operating_system(
    subtests: pytest.Subtests,
    escape_targets: EscapeTargets,
    scratch_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The report's escape (realpath patched so the audit hook allows everything) and its variants: whatever the
    hook lets through, the jail shows no secret, no portal directory, no /proc, and keeps every write inside."""
    caplog.set_level("INFO")
    secret = escape_targets.secret.read_text()
    limits = sandbox.UploadLimits.from_settings()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            case.id: pool.submit(_outcome, *escape_upload(case, escape_targets), limits) for case in ESCAPE_CASES
        }
    outcomes = {key: future.result()[0] for key, future in futures.items()}
    # A later Python process of the portal's: a .pth or customize module dropped by an escape would run here.
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    for case in ESCAPE_CASES:
        with subtests.test(msg=case.id):
            outcome = outcomes[case.id]
            assert secret not in _everything_shown(outcome, caplog)
            if case.via_error:
                assert isinstance(outcome, UploadRejected), outcome
                assert "RuntimeError in escape.py" in str(outcome)
            else:
                assert isinstance(outcome, ParsedRepo), outcome
                report = _report(outcome)
                assert report, "the escape attempts did not run"
                got = {name: r for name, r in report.items() if r.startswith("ok") and escape_targets.token not in r}
                # A write may succeed inside the jail (its private /tmp); a read never finds anything of the host.
                assert not got or all("/tmp/" in r for r in got.values()), got
    with subtests.test(msg="nothing written outside the sandbox"):
        assert leftovers(escape_targets) == []
        assert not Path(f"/tmp/{escape_targets.token}-pth-ran").exists()
        assert customize_files(escape_targets) == set()
        assert not list(scratch_tmp.iterdir()), "a temporary directory was left behind"


def test_the_realpath_escape_gets_past_the_audit_hook_but_not_the_jail(
    escape_targets: EscapeTargets, scratch_tmp: Path
) -> None:
    """The audit hook is a second layer only: the report's trick still defeats it (a write to /tmp succeeds),
    and what it reaches is the jail's private /tmp, gone with the sandbox."""
    case = next(c for c in ESCAPE_CASES if c.id == "realpath_code_swap")
    outcome, _ = _outcome(*escape_upload(case, escape_targets), sandbox.UploadLimits.from_settings())
    assert isinstance(outcome, ParsedRepo), outcome
    report = _report(outcome)
    assert report["write_tmp"] == repr(f"/tmp/{escape_targets.token}-escape").join(["ok: ", ""]), report
    for name in ("read_secret", "read_var_credentials", "read_portal_settings", "read_parent_environ"):
        assert report[name].startswith("FileNotFoundError"), (name, report[name])
    for name in ("write_var", "write_base", "pth_drop_0", "write_venv_bin"):
        assert report[name].startswith(("FileNotFoundError", "OSError", "PermissionError")), (name, report[name])
    assert leftovers(escape_targets) == []


# --- Where the jail cannot be built ---------------------------------------------------------------


def test_isolation_is_checked_with_a_probe() -> None:
    """The probe builds the real jail and checks what it sees: no portal directory, no secret, only lo."""
    detail = sandbox.isolation_check()
    assert "mount, PID, network, IPC and UTS namespaces" in detail
    assert ("uid 65534" in detail) == (os.geteuid() == 0)


@pytest.fixture
def kernel_refuses_namespaces(monkeypatch: pytest.MonkeyPatch, scratch_tmp: Path) -> Iterator[None]:
    """The kernel refuses the jail's unshare(2) (as where user namespaces are disabled), for real: the
    namespace set asked for includes a flag unshare never takes (CLONE_PTRACE: EINVAL)."""
    isolation._probe.cache_clear()
    monkeypatch.setattr(isolation, "NAMESPACES", isolation.NAMESPACES | 0x00002000)
    yield
    isolation._probe.cache_clear()


def test_a_read_only_path_under_tmp_is_seen_in_the_jail(tmp_path: Path, scratch_tmp: Path) -> None:
    """A checkout (and so its virtualenv) under /tmp: the jail's private /tmp must not hide it."""
    shared = tmp_path / "shared.txt"
    shared.write_text("visible")
    shared.chmod(0o644)
    work = Path(tempfile.mkdtemp())
    script = "import pathlib; print(pathlib.Path('/tmp/checkout/.venv/marker').read_text())"
    done = isolation.run(
        work,
        [sys.executable, "-I", "-S", "-c", script],
        binds=[(str(shared), "/tmp/checkout/.venv/marker")],
        cwd="/tmp",
        limits=sandbox.UploadLimits.from_settings(),
        mode="exec",
    )
    upload_archive.remove_tree(work)
    assert (done.returncode, done.output.decode().strip()) == (0, "visible"), done


@pytest.mark.usefixtures("kernel_refuses_namespaces")
def test_uploads_are_refused_where_the_jail_cannot_be_built(scratch_tmp: Path) -> None:
    """The namespaces cannot be made: every upload is refused with the reason; no weaker sandbox runs."""
    with pytest.raises(UploadSandboxUnavailable) as excinfo:
        feast_gateway.parse_upload(zip_bytes({"features.py": BASE}), filename="x.zip", project=PROJECT)
    message = str(excinfo.value)
    assert "uploads are disabled: this machine cannot isolate uploaded code" in message
    assert "creating namespaces" in message and "Invalid argument" in message, message
    assert excinfo.value.status_code == 503
    assert not list(scratch_tmp.iterdir())


@pytest.mark.django_db
def test_readyz_and_preflight_say_whether_uploads_are_isolated(
    client: Client, demo_repo: feast_gateway.RepoRef, request: pytest.FixtureRequest
) -> None:
    body = client.get("/readyz").json()
    assert body["checks"]["upload_sandbox"]["ok"] is True
    assert "namespaces" in body["checks"]["upload_sandbox"]["detail"]
    # preflight prints this (as "uploads: isolated (...)" or "warning: ..."); its database checks need the
    # non-test database, so the function it calls is checked here.
    assert upload_isolation() == (True, body["checks"]["upload_sandbox"]["detail"])

    request.getfixturevalue("kernel_refuses_namespaces")
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body  # the rest of the portal still serves
    assert body["failing"] == []
    sandbox_check = body["checks"]["upload_sandbox"]
    assert sandbox_check["ok"] is False and sandbox_check["informational"] is True
    assert "uploads are disabled" in sandbox_check["error"]
    isolated, detail = upload_isolation()
    assert not isolated and detail.startswith("uploads are disabled: this machine cannot isolate uploaded code")


# --- Transformations: the source reviewers read is what is stored -------------------------------------------


def _udfs(repo: ParsedRepo) -> list[Any]:
    messages = []
    for obj in repo.objects:
        messages += feast_gateway.udf_messages(getattr(feast_gateway.feast_api(), obj.proto_type).FromString(obj.proto))
    return messages


def test_a_pickled_udf_that_is_not_its_source_is_never_stored(tmp_path: Path, scratch_tmp: Path) -> None:
    """The report's swap: refused when the text does not run alone; stored without the pickle when it does.
    Either way the payload never runs (not here, not in the jail's checks)."""
    marker = tmp_path / "payload-ran"
    limits = sandbox.UploadLimits.from_settings()
    with ThreadPoolExecutor(max_workers=2) as pool:
        failing = pool.submit(_outcome, *udf_swap_upload(marker, text_runs_alone=False), limits)
        running = pool.submit(_outcome, *udf_swap_upload(marker, text_runs_alone=True), limits)
    refused, stored = failing.result()[0], running.result()[0]
    assert isinstance(refused, UploadRejected), refused
    assert (
        "the transformation 'employee_risk_signals' of feature view 'employee_risk_signals' does not run on its own "
        "(NameError: name 'SCALE' is not defined)"
    ) in str(refused)
    assert isinstance(stored, ParsedRepo), stored
    udfs = _udfs(stored)
    assert udfs and all(u.body == b"" for u in udfs)
    assert [u.view for u in stored.udfs] == ["employee_risk_signals"]
    assert all('> 18).astype("int64")' in u.body_text for u in udfs)
    assert not marker.exists()
    # What Feast builds from the stored proto runs the reviewed text; the payload is nowhere to unpickle.
    view = next(o for o in stored.objects if o.name == "employee_risk_signals")
    from feast.on_demand_feature_view import OnDemandFeatureView  # Feast itself, as a feature server loads it

    odfv = OnDemandFeatureView.from_proto(feast_gateway.feast_api().OnDemandFeatureView.FromString(view.proto))
    assert odfv.feature_transformation.udf.__name__ == "employee_risk_signals"
    assert not marker.exists()
    assert not list(scratch_tmp.iterdir())


_DOUBLED = """\
import pandas as pd
from feast import RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

request = RequestSource(name="req", schema=[Field(name="x", dtype=Float64)])


@on_demand_feature_view(sources=[request], schema=[Field(name="y", dtype=Float64)], mode="pandas")
def doubled(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"y": inputs["x"] * 2})


doubled.feature_transformation.udf_string = UDF_STRING
"""


@pytest.mark.parametrize(
    ("udf_string", "message"),
    [
        # Only a pickle: nothing a reviewer could read.
        ("", "feature view 'doubled' has a transformation without source text"),
        # Code beside the function would run wherever Feast loads the view (the apply worker included).
        (
            "import os\ndef doubled(inputs):\n    return inputs\n",
            "its source must be the definition of 'doubled' alone, with no other statement",
        ),
        (
            "def doubled(inputs, pid=__import__('os').getpid()):\n    return inputs\n",
            "a default value or an annotation runs code when the source is loaded",
        ),
        ("def other(inputs):\n    return inputs\n", "its source defines 'other', not 'doubled'"),
    ],
    ids=["no_source", "statement_beside", "default_runs_code", "other_name"],
)
def test_unreviewable_udfs_are_refused(udf_string: str, message: str, scratch_tmp: Path) -> None:
    code = BASE + _DOUBLED.replace("UDF_STRING", repr(udf_string))
    data = zip_bytes({"features.py": code})
    with pytest.raises(UploadRejected) as excinfo:
        sandbox._parse_upload(data, filename="x.zip", project=PROJECT, limits=sandbox.UploadLimits.from_settings())
    assert message in str(excinfo.value)
    assert "invalid definitions: " in str(excinfo.value)
    assert not list(scratch_tmp.iterdir())
