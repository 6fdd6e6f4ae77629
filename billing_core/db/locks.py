"""Named exclusive locks that the operating system or the database releases when their
holder dies, so a run killed with kill -9 never leaves a lock behind.

- SQLite: `flock` on a file beside the database (`billing.db.billflow-<name>.lock`).
- PostgreSQL: a session advisory lock, held by a dedicated connection; the server
  releases it when the connection closes, which it does when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text


class LockBusy(RuntimeError):
    """Somebody else holds the lock."""


def _advisory_key(name: str) -> tuple[int, int]:
    digest = hashlib.blake2b(f"billflow:{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest[:4], "big", signed=True),
            int.from_bytes(digest[4:], "big", signed=True))


def lock_path(engine: Engine, name: str) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("named locks need a SQLite file, not an in-memory database")
    path = Path(database)
    return path.with_name(f"{path.name}.billflow-{name}.lock")


def _try_flock(path: Path, shared: bool = False) -> int | None:
    if shared:  # only looking: never create the file, a read-only descriptor will do
        fd = os.open(path, os.O_RDONLY)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _scoped(conn: Connection, name: str) -> str:
    """Advisory locks are per database: name them per schema too, so two installations in
    one database (or two test schemas) never share a lock."""
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    return f"{name}@{schema}"


def _try_advisory(conn: Connection, name: str) -> bool:
    a, b = _advisory_key(name)
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"),
                             {"a": a, "b": b}).scalar())


@contextmanager
def exclusive(engine: Engine, name: str, wait_seconds: float = 1.0) -> Iterator[None]:
    """Hold the lock `name` for the block; LockBusy if it is still held by somebody else
    after `wait_seconds` (a brief wait covers another process only checking it)."""
    deadline = time.monotonic() + wait_seconds
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            name = _scoped(conn, name)
            while not _try_advisory(conn, name):
                if time.monotonic() >= deadline:
                    raise LockBusy(name)
                time.sleep(0.1)
            try:
                yield
            finally:
                a, b = _advisory_key(name)
                conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": a, "b": b})
        finally:
            conn.close()
        return
    path = lock_path(engine, name)
    fd = _try_flock(path)
    while fd is None:
        if time.monotonic() >= deadline:
            raise LockBusy(name)
        time.sleep(0.1)
        fd = _try_flock(path)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def is_held(engine: Engine, name: str) -> bool:
    """Whether a live process holds the lock now (checked without taking it on
    PostgreSQL; on SQLite by a shared lock that is let go at once)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            a, b = _advisory_key(_scoped(conn, name))
            return bool(conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = "
                "current_database()) "
                "AND classid = CAST(:a AS oid) AND objid = CAST(:b AS oid) AND objsubid = 2 "
                "AND granted)"),
                {"a": a % (1 << 32), "b": b % (1 << 32)}).scalar())
    path = lock_path(engine, name)
    if not path.exists():
        return False
    fd = _try_flock(path, shared=True)
    if fd is None:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False
