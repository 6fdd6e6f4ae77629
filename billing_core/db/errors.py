"""Which database errors are worth a retry."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, TimeoutError

_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def is_transient(error: BaseException | None) -> bool:
    """True for lost connections, timeouts, locks and serialisation failures; False for
    errors that a retry would only repeat (bad SQL, constraint violations, bad data)."""
    if error is None:
        return False
    if isinstance(error, DisconnectionError | TimeoutError):
        return True
    if isinstance(error, OperationalError):
        if isinstance(error.orig, sqlite3.OperationalError):  # SQLite says this of bad SQL too
            return any(word in str(error.orig).lower() for word in _SQLITE_TRANSIENT)
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    code = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    return code in ("40001", "40P01") or code.startswith("08")  # serialisation, deadlock, conn
