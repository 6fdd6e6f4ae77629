"""Dialect-specific SQL for reading an event's JSON metadata, and filter compilation.

Filters compile to SQL text with bound parameters (values are never spliced into SQL).
Semantics: an event that lacks a filtered property (or has it as null) does not match a
condition on it (and so matches a negated group, `negate: true`);
numeric comparators match only JSON numbers, compared exactly as decimals; strings
compare case-sensitively; `contains` applies to strings only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_core.catalog.models import NUMERIC_OPERATORS, Condition, Filter, Meter
from billing_core.db.types import sqlite_datetime

_CMP = {"greater_than": ">", "greater_than_or_equals": ">=", "less_than": "<",
        "less_than_or_equals": "<=", "equals": "=", "not_equals": "<>"}


@dataclass
class Params:
    """Collects bound parameters under generated names."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


class JsonSql:
    """SQL snippets for metadata access; subclasses per dialect."""

    dialect: str
    number_types: tuple[str, ...]
    sum_function: str
    string_type: str
    boolean_types: tuple[str, ...]

    def __init__(self, params: Params, column: str = "e.metadata") -> None:
        self.params = params
        self.column = column

    def typeof(self, key: str) -> str:  # JSON type name, NULL when missing
        raise NotImplementedError

    def raw(self, key: str) -> str:  # the value's JSON text / jsonb (for DISTINCT)
        raise NotImplementedError

    def number(self, key: str) -> str:  # the exact number (text on SQLite, numeric on PG)
        raise NotImplementedError

    def string(self, key: str) -> str:
        raise NotImplementedError

    def compare_number(self, key: str, op: str, value: int | Decimal) -> str:
        raise NotImplementedError

    def equals_boolean(self, key: str, value: bool) -> str:
        raise NotImplementedError

    def contains(self, key: str, value: str) -> str:
        raise NotImplementedError

    def timestamp(self, value: datetime) -> Any:
        return value

    def is_number(self, key: str) -> str:
        types = ", ".join(f"'{t}'" for t in self.number_types)
        return f"{self.typeof(key)} IN ({types})"

    def is_present(self, key: str) -> str:  # one type look-up; never NULL
        return f"(COALESCE({self.typeof(key)}, 'null') <> 'null')"

    def is_string(self, key: str) -> str:
        return f"{self.typeof(key)} = '{self.string_type}'"

    def is_boolean(self, key: str) -> str:
        types = ", ".join(f"'{t}'" for t in self.boolean_types)
        return f"{self.typeof(key)} IN ({types})"

    # --- filters ---------------------------------------------------------------------
    def condition(self, c: Condition) -> str:
        key, op, value = c.key, c.operator, c.value
        if op in NUMERIC_OPERATORS:
            return f"({self.is_number(key)} AND {self.compare_number(key, _CMP[op], value)})"
        if op in ("contains", "does_not_contain"):
            test = self.contains(key, value)
            test = test if op == "contains" else f"NOT {test}"
            return f"({self.is_string(key)} AND {test})"
        equal = self._equals(key, value)
        if op == "equals":
            return equal
        return f"({self.is_present(key)} AND NOT {equal})"

    def _equals(self, key: str, value: Any) -> str:
        if isinstance(value, bool):
            return f"({self.is_boolean(key)} AND {self.equals_boolean(key, value)})"
        if isinstance(value, int | Decimal):
            return f"({self.is_number(key)} AND {self.compare_number(key, '=', value)})"
        return f"({self.is_string(key)} AND {self.string(key)} = {self.params.add(value)})"

    def meter_test(self, meter: Meter) -> str:
        """Whether an event (alias `e`) counts for the meter: its event name and filter."""
        name = f"e.event_name = {self.params.add(meter.event_name)}"
        return f"({name} AND {self.filter(meter.filter)})" if meter.filter else f"({name})"

    def filter(self, f: Filter) -> str:
        parts = [self.condition(c) for c in f.conditions] + [self.filter(g) for g in f.groups]
        joiner = " AND " if f.logic == "and" else " OR "
        test = "(" + joiner.join(parts) + ")" if parts else "(1=1)"
        if f.negate:
            # A test on a missing property is false, never NULL, so its negation is true.
            return f"(NOT COALESCE({test}, FALSE))"
        return test


class SqliteJson(JsonSql):
    dialect = "sqlite"
    number_types = ("integer", "real")
    sum_function = "decimal_sum"  # exact: SQLite's own SUM goes through floats
    string_type = "text"
    boolean_types = ("true", "false")

    def _path(self, key: str) -> str:
        return self.params.add(f'$."{key}"')

    def typeof(self, key: str) -> str:
        return f"json_type({self.column}, {self._path(key)})"

    def raw(self, key: str) -> str:
        return f"({self.column} -> {self._path(key)})"

    def number(self, key: str) -> str:
        return self.raw(key)  # JSON number text, exact; summed by decimal_sum

    def string(self, key: str) -> str:
        return f"json_extract({self.column}, {self._path(key)})"

    def compare_number(self, key: str, op: str, value: int | Decimal) -> str:
        return f"decimal_cmp({self.raw(key)}, {self.params.add(format(Decimal(value), 'f'))}) " \
               f"{op} 0"

    def equals_boolean(self, key: str, value: bool) -> str:
        return f"{self.typeof(key)} = '{'true' if value else 'false'}'"

    def contains(self, key: str, value: str) -> str:
        return f"instr({self.string(key)}, {self.params.add(value)}) > 0"

    def _equals(self, key: str, value: Any) -> str:
        if isinstance(value, str):
            # Metadata values are scalars (ingest refuses arrays and objects), and SQLite
            # never finds a number or a boolean (integer) equal to a text: json_extract
            # equals a text only when the value is that very JSON string.
            return f"({self.string(key)} = {self.params.add(value)})"
        return super()._equals(key, value)

    def timestamp(self, value: datetime) -> Any:
        return sqlite_datetime(value)


class PostgresJson(JsonSql):
    dialect = "postgresql"
    number_types = ("number",)
    sum_function = "SUM"
    string_type = "string"
    boolean_types = ("boolean",)

    def _key(self, key: str) -> str:
        return f"CAST({self.params.add(key)} AS text)"

    def typeof(self, key: str) -> str:
        return f"jsonb_typeof({self.column} -> {self._key(key)})"

    def raw(self, key: str) -> str:
        return f"({self.column} -> {self._key(key)})"

    def number(self, key: str) -> str:
        # CASE guarantees the cast only sees numbers (AND does not fix evaluation order).
        return (f"(CASE WHEN {self.is_number(key)} "
                f"THEN CAST({self.column} ->> {self._key(key)} AS numeric) END)")

    def string(self, key: str) -> str:
        return f"({self.column} ->> {self._key(key)})"

    def is_present(self, key: str) -> str:  # `->>` is NULL for a missing key and a null
        return f"({self.string(key)} IS NOT NULL)"

    def compare_number(self, key: str, op: str, value: int | Decimal) -> str:
        return f"{self.number(key)} {op} CAST({self.params.add(str(value))} AS numeric)"

    def equals_boolean(self, key: str, value: bool) -> str:
        return f"{self.string(key)} = '{'true' if value else 'false'}'"

    def contains(self, key: str, value: str) -> str:
        return f"strpos({self.string(key)}, {self.params.add(value)}) > 0"

    def condition(self, c: Condition) -> str:
        if c.operator == "contains" and not _could_be_in_a_scalar(c.value):
            return f"({self.contains(c.key, c.value)})"
        return super().condition(c)

    def _equals(self, key: str, value: Any) -> str:
        if isinstance(value, str) and not _could_be_a_scalar(value):
            return f"({self.string(key)} = {self.params.add(value)})"
        return super()._equals(key, value)


_NUMBER_TEXT = frozenset("0123456789+-.eE")


def _could_be_a_scalar(text: str) -> bool:
    """Whether `->>` of a JSON number or boolean could read `text` (metadata values are
    scalars, and `->>` of a null is NULL): if not, `->> = text` alone is true exactly for
    the JSON string `text`, with no type look-up."""
    return text in ("true", "false") or (bool(text) and set(text) <= _NUMBER_TEXT)


def _could_be_in_a_scalar(text: str) -> bool:
    """Whether `->>` of a JSON number or boolean could contain `text` (see above)."""
    return text in "true" or text in "false" or set(text) <= _NUMBER_TEXT


def json_sql(dialect_name: str, params: Params) -> JsonSql:
    """The JsonSql for a SQLAlchemy dialect name."""
    if dialect_name == "postgresql":
        return PostgresJson(params)
    if dialect_name == "sqlite":
        return SqliteJson(params)
    raise NotImplementedError(f"metering does not support the {dialect_name!r} database")
