"""Engine set-up: SQLite file by default, any URL in BILLING_DATABASE_URL."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, event, make_url

from billing_core.db.types import dumps_exact, loads_exact
from billing_core.money import EXACT

DEFAULT_DATABASE_URL = "sqlite:///billing.db"


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else BILLING_DATABASE_URL, else ./billing.db."""
    return url or os.environ.get("BILLING_DATABASE_URL") or DEFAULT_DATABASE_URL


def get_engine(url: str | None = None) -> Engine:
    """A pooled engine for the URL (default: see `database_url`), one per URL; JSON numbers
    round-trip as Decimal, never float."""
    return _engine_for(database_url(url))


def read_only_file(url: str) -> str | None:
    """The path of a SQLite database file this process may read but not write (nor create
    its journal beside), or None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    path = os.path.abspath(parsed.database)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        return None
    writable = os.access(path, os.W_OK) and os.access(os.path.dirname(path), os.W_OK)
    return None if writable else path


def _read_only_connect(path: str) -> Callable[[], sqlite3.Connection]:
    """Connections that only read: `mode=ro`, or `immutable` when SQLite cannot even keep
    its shared-memory file beside a WAL database in a folder it may not write."""
    location = "file:" + urllib.parse.quote(path)

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(f"{location}?mode=ro", uri=True, timeout=60,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            conn = sqlite3.connect(f"{location}?mode=ro&immutable=1", uri=True, timeout=60,
                                   check_same_thread=False)
        return conn
    return connect


@lru_cache(maxsize=32)
def _engine_for(url: str) -> Engine:
    kwargs: dict = {"json_serializer": dumps_exact, "json_deserializer": loads_exact,
                    "pool_pre_ping": True}
    read_only = read_only_file(url)
    if read_only:
        kwargs["creator"] = _read_only_connect(read_only)
    elif url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect",
                     _configure_sqlite_read_only if read_only else _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    return engine


WRITE = {"sqlite_begin": "IMMEDIATE"}
"""Execution options for a connection that will write: on SQLite its transactions begin
with BEGIN IMMEDIATE, taking the write lock before the first read, so that a look-up and
the write that depends on it cannot interleave with another writer (the other waits)."""


def _begin_sqlite(conn: Connection) -> None:
    # pysqlite's own transaction handling is off (see _configure_sqlite): every transaction
    # is begun here, so reads inside one transaction see one snapshot.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _exact(value: object) -> Decimal:
    """A JSON number's text (what `->` yields) or an integer, as a Decimal; never a float."""
    if isinstance(value, str):
        return Decimal(value)
    if isinstance(value, int):
        return Decimal(value)
    raise TypeError(f"exact decimal aggregate got {type(value).__name__} {value!r}")


class _DecimalSum:
    """SQLite aggregate: exact sum of JSON number texts (SQLite's own SUM uses floats)."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: object) -> None:
        if value is None:
            return
        number = _exact(value)
        self.total = number if self.total is None else EXACT.add(self.total, number)

    def finalize(self) -> str | None:
        return None if self.total is None else format(self.total, "f")


class _DecimalRunningSum(_DecimalSum):
    """SQLite window function: the exact running sum (`OVER (... ROWS UNBOUNDED
    PRECEDING)`)."""

    def inverse(self, value: object) -> None:
        if value is not None and self.total is not None:
            self.total = EXACT.subtract(self.total, _exact(value))

    def value(self) -> str | None:
        return self.finalize()


_NUMBER_TYPES = frozenset(("integer", "real"))


class _MeterStats:
    """SQLite aggregate: one meter's counts and exact value in a single pass, so the
    meter's filter is evaluated once per event instead of once per count.
    `meter_stats(op, json_type(metadata, path), metadata -> path) FILTER (WHERE match)`,
    op 'sum' / 'max' / 'min' / 'none'; the result is the text "matched present numbers
    value" (value '-' when no number was seen or op is 'none')."""

    def __init__(self) -> None:
        self.matched = self.present = self.numbers = 0
        self.value: Decimal | None = None

    def step(self, op: str, kind: str | None, raw: object) -> None:
        self.matched += 1
        if kind is None or kind == "null":
            return
        self.present += 1
        if kind not in _NUMBER_TYPES:
            return
        self.numbers += 1
        if op == "none":
            return
        number = _exact(raw)
        if self.value is None:
            self.value = number
        elif op == "sum":
            self.value = EXACT.add(self.value, number)
        elif (number > self.value) if op == "max" else (number < self.value):
            self.value = number

    def finalize(self) -> str:
        shown = "-" if self.value is None else format(self.value, "f")
        return f"{self.matched} {self.present} {self.numbers} {shown}"


def _decimal_mul(left: object, right: object) -> str | None:
    """SQLite function: the exact product of two decimal texts or integers."""
    if left is None or right is None:
        return None
    return format(EXACT.multiply(_exact(left), _exact(right)), "f")


_EPOCH = datetime(1970, 1, 1)


def _epoch_us(value: object) -> int | None:
    """SQLite function: microseconds since 1970 of a stored (naive UTC) timestamp text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"epoch_us got {type(value).__name__} {value!r}")
    delta = datetime.fromisoformat(value) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _decimal_cmp(left: object, right: object) -> int | None:
    """SQLite function: compare a JSON number text with a decimal text, exactly."""
    if left is None or right is None:
        return None
    try:
        a, b = _exact(left), _exact(right)
    except (ArithmeticError, TypeError, ValueError):
        return None   # not a JSON number: SQLite may evaluate this before the type test
    return (a > b) - (a < b)


def _register_functions(dbapi_connection: sqlite3.Connection) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _begin_sqlite
    dbapi_connection.create_function("decimal_cmp", 2, _decimal_cmp, deterministic=True)
    dbapi_connection.create_aggregate("decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
    dbapi_connection.create_aggregate("meter_stats", 3, _MeterStats)  # type: ignore[arg-type]
    dbapi_connection.create_window_function("decimal_running_sum", 1, _DecimalRunningSum)
    dbapi_connection.create_function("decimal_mul", 2, _decimal_mul, deterministic=True)
    dbapi_connection.create_function("epoch_us", 1, _epoch_us, deterministic=True)


def _configure_sqlite_read_only(dbapi_connection: sqlite3.Connection,
                                _record: object) -> None:
    _register_functions(dbapi_connection)
    dbapi_connection.execute("PRAGMA cache_size=-131072")


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    _register_functions(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 128 MiB of page cache (default 2 MiB): keeping the event indexes' B-tree pages in
    # memory makes bulk ingest about a third faster. Memory is taken only as pages are read.
    cursor.execute("PRAGMA cache_size=-131072")
    # Checkpoint the WAL every 64 MiB instead of every 4 MiB: index pages that change in
    # many chunks are copied into the database once per checkpoint (ingest ~10% faster).
    cursor.execute("PRAGMA wal_autocheckpoint=16384")
    cursor.close()
