"""Typed readers for environment variables that fail loudly (ImproperlyConfigured), naming the variable.

Used only by portal/settings.py. Every variable read here is listed in .env.example.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING = object()


def env_str(name: str, default: str | object = _MISSING) -> str:
    """A string; raises if unset and no default."""
    value = os.environ.get(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"{name} is not set")
        return str(default)
    return value


SECRET_NAMES: set[str] = set()  # every NAME read with env_secret (preflight checks their NAME_FILE modes)


def env_secret(name: str, default: str | object = _MISSING) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Kubernetes Secret volumes)."""
    SECRET_NAMES.add(name)
    file_var = f"{name}_FILE"
    path = os.environ.get(file_var)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{file_var}: cannot read {path}: {exc.strerror}") from None
    value = os.environ.get(name)
    if value:
        return value
    if default is _MISSING:
        raise ImproperlyConfigured(f"{name} (or {file_var}) is not set")
    return str(default)


def env_bool(name: str, *, default: bool) -> bool:
    """A boolean written as 1/0, true/false, yes/no or on/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    """An integer, optionally with a lower bound."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, *, default: list[str]) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_path(name: str, *, default: Path) -> Path:
    """A filesystem path (not checked for existence)."""
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed DATABASE_URL."""

    engine: str  # "postgresql" or "sqlite"
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def django(self) -> dict[str, object]:
        """The DATABASES entry for this URL."""
        if self.engine == "sqlite":
            return {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": self.name,
                # WAL lets the web process read while the worker writes; IMMEDIATE avoids
                # "database is locked" upgrades inside write transactions.
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
            }
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": self.host,
            "PORT": self.port,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 5, **dict(self.options)},
        }

    def with_name(self, name: str) -> DatabaseUrl:
        """The same server, another database."""
        return DatabaseUrl(self.engine, name, self.user, self.password, self.host, self.port, self.options)

    def sqlalchemy(self) -> str:
        """A SQLAlchemy URL (psycopg 3 driver, which Feast's SQL registry uses)."""
        if self.engine == "sqlite":
            return f"sqlite:///{self.name}"
        auth = self.user + (f":{self.password}" if self.password else "")
        netloc = (f"{auth}@" if auth else "") + self.host + (f":{self.port}" if self.port else "")
        return f"postgresql+psycopg://{netloc}/{self.name}"


def parse_database_url(name: str, raw: str) -> DatabaseUrl:
    """Parse postgresql://user:pass@host:port/db or sqlite:///path; raises naming `name` on bad input."""
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is malformed ({exc}): expected postgresql://user@host:5432/db") from None
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ImproperlyConfigured(f"{name}={raw!r}: sqlite URL needs a path, e.g. sqlite:////abs/path.db")
        return DatabaseUrl("sqlite", path[1:] if path.startswith("//") else path)
    if scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            f"{name}={raw!r}: unsupported scheme {parts.scheme!r} (use postgresql:// or sqlite:///)"
        )
    db = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not db:
        raise ImproperlyConfigured(f"{name}={raw!r} is malformed: expected postgresql://user@host:5432/dbname")
    return DatabaseUrl(
        "postgresql",
        db,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        parts.hostname,
        str(port or ""),
        tuple(parse_qsl(parts.query)),
    )


@dataclass(frozen=True)
class RedisUrl:
    """A parsed REDIS_URL."""

    url: str
    host: str
    port: int
    db: int
    password: str

    def feast_connection_string(self) -> str:
        """Feast's redis online-store connection_string: host:port,db=N[,password=...]."""
        parts = [f"{self.host}:{self.port}", f"db={self.db}"]
        if self.password:
            parts.append(f"password={self.password}")
        return ",".join(parts)


def parse_redis_url(name: str, raw: str) -> RedisUrl:
    """Parse redis://[:password@]host:port/db; raises naming `name` on bad input."""
    try:
        parts = urlsplit(raw)
        port = parts.port or 6379
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is malformed ({exc}): expected redis://host:6379/0") from None
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ImproperlyConfigured(f"{name}={raw!r} is malformed: expected redis://host:6379/0")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise ImproperlyConfigured(f"{name}={raw!r}: the database number {db_text!r} is not an integer")
    return RedisUrl(raw, parts.hostname, port, int(db_text), unquote(parts.password or ""))
