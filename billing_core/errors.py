"""One clear line for an error that reaches a person or the run history: never a
traceback, never an SQL statement with its parameters."""

from __future__ import annotations

import errno

from sqlalchemy.exc import DBAPIError, SQLAlchemyError


def describe(error: BaseException, limit: int = 500) -> str:
    """'<Kind>: <what went wrong>' on one line, at most `limit` characters."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        inner: BaseException = error.orig
        kind = f"database error ({type(inner).__name__})"
        text = str(inner)
    elif isinstance(error, SQLAlchemyError):
        kind = "database error"
        text = str(error).split("\n[SQL:")[0]
    elif isinstance(error, OSError) and error.errno == errno.ENOSPC:
        kind, text = "disk full", f"{error.filename or ''} {error.strerror}".strip()
    elif isinstance(error, OSError):
        kind = type(error).__name__
        text = f"{error.filename}: {error.strerror}" if error.filename else \
            (error.strerror or str(error))
    else:
        kind, text = type(error).__name__, str(error)
    text = " ".join(text.replace("\x00", "\\x00").split())
    line = f"{kind}: {text}" if text else kind
    return line if len(line) <= limit else line[:limit - 3] + "..."
