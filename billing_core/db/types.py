"""Column types that keep money and metadata exact on every database."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL, decimal text on SQLite (whose NUMERIC would be a float)."""

    impl = String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(80))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("refusing a float for an exact decimal column")
        value = Decimal(value)
        return value if dialect.name == "postgresql" else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def sqlite_datetime(moment: datetime) -> str:
    """A naive UTC datetime as SQLAlchemy stores it on SQLite: YYYY-MM-DD HH:MM:SS.ffffff
    (so raw SQL compares with stored values as text, in order)."""
    return moment.isoformat(" ", "microseconds")


# JSONB on PostgreSQL, JSON text on SQLite.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


_PLAIN = frozenset({str, int, bool, type(None)})
# The C encoder produces the canonical text for plain values (the slow path below agrees).
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                              allow_nan=False)


def dumps_plain(value: list[Any] | dict[str, Any]) -> str:
    """dumps_exact of a list, or a dict with str keys, of plain values only (str, int,
    bool, None), known to be so by the caller: the same text, without the checks."""
    return _CANONICAL.encode(value)


def dumps_exact(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) with Decimals as exact JSON numbers.

    Floats are refused: every number that reaches the database is an int or a Decimal.
    Flat objects and lists of plain values (the common event metadata) take the C encoder.
    """
    kind = type(value)
    if kind is dict:
        if all(type(k) is str and type(v) in _PLAIN for k, v in value.items()):
            return _CANONICAL.encode(value)
    elif (kind is list or kind is tuple) and all(type(v) in _PLAIN for v in value):
        return _CANONICAL.encode(value)
    return _dumps_exact_slow(value)


def _dumps_exact_slow(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return format(value, "f")
    if isinstance(value, str):
        return _CANONICAL.encode(value)
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_CANONICAL.encode(str(k))}:{dumps_exact(v)}"
                              for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    raise TypeError(f"not exact-JSON serialisable: {type(value).__name__} {value!r}")


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON with non-integer numbers as Decimal (never float)."""
    return json.loads(text, parse_float=Decimal)
