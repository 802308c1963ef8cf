"""Writing a registry all or nothing: the rows Feast writes, committed together or not at all.

Feast 0.67 writes a SQL registry object by object, each in its own transaction (`SqlRegistry._apply_object`,
`_delete_object`, the version-history snapshots, the project row and `feast_metadata` each open
`write_engine.begin()`), so a worker killed between two objects leaves the registry half-applied. And it
rewrites a file registry in place (`FileRegistryStore._write_registry` truncates, then writes), so a kill
mid-write leaves a truncated file.

The portal keeps Feast's own code for every row (what it writes, its timestamps, its version history) and
changes only where the writes go:
- SQL: while the apply runs, the registry's engines are replaced by one connection holding one open
  transaction; each of Feast's `engine.begin()` blocks becomes a savepoint in it (so Feast's own
  "already exists" handling still works), and the transaction commits once Feast's apply has returned.
  A worker killed before that commit never sends COMMIT: PostgreSQL rolls everything back.
- File: the new registry is written to a temporary file beside the old one, synced, and renamed over it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# How often (ms) PostgreSQL checks, while it waits (e.g. on a row lock), that the apply worker is still
# connected: a killed worker's transaction is rolled back and its locks freed within this, instead of when
# the blocked statement finally runs.
CLIENT_CHECK_INTERVAL_MS = 1000


class _OneTransaction:
    """An Engine stand-in for Feast's SqlRegistry: `begin()` and `connect()` hand out the same connection,
    inside a savepoint of the one transaction the apply runs in."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.dialect = conn.dialect
        self.url = conn.engine.url

    @contextmanager
    def begin(self) -> Iterator[Any]:
        with self._conn.begin_nested():
            yield self._conn

    connect = begin


@contextmanager
def one_sql_transaction(registry: Any) -> Iterator[None]:
    """Run the body with every statement of Feast's `registry` (a SqlRegistry) in one transaction, committed
    when the body returns and rolled back if it raises. Reads go through it too, so Feast sees its own writes."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    saved = registry.write_engine, registry.read_engine
    with registry.write_engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            try:
                with conn.begin_nested():
                    conn.execute(text(f"SET LOCAL client_connection_check_interval = {CLIENT_CHECK_INTERVAL_MS}"))
            except DBAPIError as exc:  # a server on a platform without the check: rollback still happens, later
                logger.info("registry server cannot check for dead clients: %s", exc)
        registry.write_engine = registry.read_engine = _OneTransaction(conn)
        try:
            yield
        finally:
            registry.write_engine, registry.read_engine = saved


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: a temporary file in the same directory, fsynced, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def atomic_file_store(registry: Any, verify: Callable[[Any], None] | None = None) -> None:
    """Make a file registry (Feast's `Registry` over a local `FileRegistryStore`) commit by rename; `verify`
    sees each registry proto before it is written and may refuse it by raising (nothing is written)."""
    from feast.infra.registry.file import FileRegistryStore
    from feast.repo_config import RegistryConfig
    from feast.utils import _utc_now

    class AtomicFileRegistryStore(FileRegistryStore):
        """Feast's FileRegistryStore, writing a new file and renaming it over the old one."""

        def _write_registry(self, registry_proto: Any) -> None:
            # What Feast stamps on every write (FileRegistryStore._write_registry), then an atomic replace.
            if verify is not None:
                verify(registry_proto)
            registry_proto.version_id = str(uuid.uuid4())
            registry_proto.last_updated.FromDatetime(_utc_now())
            write_atomically(self._filepath, registry_proto.SerializeToString())

    store = getattr(registry, "_registry_store", None)
    if type(store) is FileRegistryStore:
        path = Path(store._filepath).absolute()
        registry._registry_store = AtomicFileRegistryStore(RegistryConfig(path=str(path)), path.parent)
