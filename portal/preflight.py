"""Configuration checks that print one clear line per problem, naming the setting (no tracebacks)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from portal import env
from portal.env import DatabaseUrl


@dataclass
class Problem:
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


def _pg_connect(url: DatabaseUrl, dbname: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        dbname=dbname,
        user=url.user or None,
        password=url.password or None,
        host=url.host,
        port=url.port or None,
        connect_timeout=5,
        autocommit=True,
    )


def ensure_postgres_database(setting: str, url: DatabaseUrl, *, create: bool) -> Problem | None:
    """Check that a PostgreSQL database is reachable; create it when missing and `create` is set."""
    import psycopg

    try:
        _pg_connect(url, url.name).close()
        return None
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if "does not exist" not in str(exc):
            return Problem(setting, f"cannot connect to PostgreSQL at {url.host}:{url.port or 5432}: {text}")
        if not create:
            return Problem(setting, f"database {url.name!r} does not exist on {url.host}")
    try:
        with _pg_connect(url, "postgres") as conn:
            conn.execute(f'CREATE DATABASE "{url.name}"')
        return None
    except psycopg.Error as exc:
        return Problem(setting, f"database {url.name!r} does not exist and could not be created: {exc}")


def check_configuration(*, create_databases: bool = False) -> list[Problem]:
    """Database, registry database, broker and every governed Feast repo."""
    from catalog import feast_gateway
    from catalog.exceptions import PortalError
    from portal.env import parse_database_url

    problems: list[Problem] = []
    db: DatabaseUrl = settings.DATABASE_URL
    if db.engine == "postgresql":
        problem = ensure_postgres_database("DATABASE_URL", db, create=create_databases)
        if problem:
            problems.append(problem)
    else:
        settings.VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    registry_url = settings.FEAST_REGISTRY_URL
    if registry_url.startswith("postgresql"):
        try:
            reg = parse_database_url("FEAST_REGISTRY_URL", registry_url.replace("postgresql+psycopg", "postgresql"))
        except Exception as exc:  # noqa: BLE001 - reported as a configuration problem
            problems.append(Problem("FEAST_REGISTRY_URL", str(exc)))
        else:
            problem = ensure_postgres_database("FEAST_REGISTRY_URL", reg, create=create_databases)
            if problem:
                problems.append(problem)
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL.url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            problems.append(
                Problem(
                    "REDIS_URL", f"cannot reach Redis at {settings.REDIS_URL.host}:{settings.REDIS_URL.port}: {exc}"
                )
            )
    for repo in feast_gateway.governed_repos():
        try:
            feast_gateway.registry_location(repo)
        except PortalError as exc:
            problems.append(Problem("FEAST_REPO_PATH", str(exc)))
    return problems


def upload_isolation() -> tuple[bool, str]:
    """Whether uploaded definitions can be isolated here, and how (or why not). Not a configuration error: without
    it the portal serves everything except uploads, which it refuses with the same message."""
    from catalog import feast_gateway
    from catalog.exceptions import UploadSandboxUnavailable

    try:
        return True, feast_gateway.isolation_check()
    except UploadSandboxUnavailable as exc:
        return False, str(exc)


def secret_file_warnings() -> list[str]:
    """Secret files on disk that users other than the portal's own can read (they should be 0600/0400)."""
    import os
    import stat
    from pathlib import Path

    # The demo users' passwords: one file per profile and database (portal/management/commands/bootstrap_demo.py).
    candidates = [settings.VAR_DIR / "secret_key", *sorted(Path(settings.VAR_DIR).glob("demo-credentials*.txt"))]
    # The files the portal's own secrets are read from: not every *_FILE variable (SSL_CERT_FILE is public).
    secret_files = (os.environ.get(f"{name}_FILE", "") for name in sorted(env.SECRET_NAMES))
    candidates += [Path(v) for v in secret_files if v.startswith("/")]
    warnings = []
    for path in dict.fromkeys(candidates):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and mode & (stat.S_IROTH | stat.S_IWOTH):
            warnings.append(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): chmod 600 it")
    return warnings


def registry_write_warnings() -> list[str]:
    """Registries whose Feast permissions let someone other than the portal create, update or delete objects.

    Feast's servers (feature server, registry server, `feast ui`), once configured with `auth:`, let every
    authenticated user do anything in a project that holds no permission; a permission granting CREATE, UPDATE
    or DELETE to any principal but the FEAST_APPLY_ROLE role lets that principal edit outside review."""
    from catalog import feast_gateway
    from catalog.exceptions import PortalError

    apply_role = settings.FEAST_APPLY_ROLE
    warnings = []
    for source in feast_gateway.governed_registries():
        where = source.location.display
        try:
            projects = feast_gateway.registry_permissions(source.repos[0])
        except PortalError as exc:
            warnings.append(f"cannot check who may write the Feast registry {where}: {exc}")
            continue
        for project, permissions in sorted(projects.items()):
            if not permissions:
                warnings.append(
                    f"Feast project {project!r} ({where}) has no permissions: Feast's servers let every user create, "
                    f"update and delete its objects. Apply the policy in feature_repo/permissions.py "
                    f"(writes for the role {apply_role!r} only)"
                )
            for p in permissions:
                writes = ", ".join(p.registry_writes)
                if not writes:
                    continue
                if not p.policy:
                    whom = "every user"
                elif p.policy == "role_based" and set(p.principals) <= {apply_role}:
                    continue
                else:
                    others = [x for x in p.principals if not (p.policy == "role_based" and x == apply_role)]
                    whom = f"{p.policy.replace('_', ' ')} {', '.join(others) or '(none named)'}"
                warnings.append(
                    f"Feast permission {p.name!r} of project {project!r} ({where}) lets {whom} {writes.lower()} "
                    f"objects outside review: only the role {apply_role!r} (FEAST_APPLY_ROLE) should"
                )
    return warnings
