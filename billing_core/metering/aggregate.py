"""Measuring usage: each meter aggregated over each window of time, in SQL.

A window is one customer's half-open time range [start, end) under a caller's key: a
subscription's billing cycle, a preview up to now, a day of `billing usage --by day`, a
past cycle re-measured for late usage. The windows travel to the database as one JSON
parameter; one GROUP BY per set of meters computes every count/sum/max/unique_count meter
of every window at once, each meter an aggregate with its own FILTER (WHERE event_name AND
filter); `last` meters need an ordering and take one window query each. Nothing is
aggregated in Python: on SQLite the exact decimal sum and max are SQL functions registered
on the connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from billing_core.catalog.models import NUMERIC_AGGREGATIONS, Meter
from billing_core.db.types import sqlite_datetime
from billing_core.metering.json_sql import JsonSql, Params, json_sql


@dataclass(frozen=True)
class Window:
    """Measure `meters` over one customer's events with start <= ts < end (naive UTC)."""

    key: str
    customer_id: str
    start: datetime
    end: datetime
    meters: tuple[str, ...]


@dataclass(frozen=True)
class MeterUsage:
    """One window's usage of one meter."""

    meter: str
    quantity: Decimal
    matched_events: int = 0
    skipped_missing: int = 0
    skipped_not_number: int = 0


Usage = dict[str, dict[str, MeterUsage]]  # window key -> meter key -> usage


def skipped_by_meter(usage: Iterable[Mapping[str, MeterUsage]]) -> dict[str, dict[str, int]]:
    """Events not counted per meter and why (missing property / not a number)."""
    totals: dict[str, dict[str, int]] = {}
    for meters in usage:
        for u in meters.values():
            if u.skipped_missing or u.skipped_not_number:
                entry = totals.setdefault(u.meter, {"missing_property": 0, "not_a_number": 0})
                entry["missing_property"] += u.skipped_missing
                entry["not_a_number"] += u.skipped_not_number
    return totals


def _predicate(sql: JsonSql, meter: Meter) -> str:
    name = f"e.event_name = {sql.params.add(meter.event_name)}"
    return f"({name} AND {sql.filter(meter.filter)})" if meter.filter else f"({name})"


def _aggregate_columns(sql: JsonSql, index: int, meter: Meter) -> list[str]:
    """SELECT columns for one meter: q{i} quantity, n{i} matched, m{i} missing, x{i} NaN."""
    match = _predicate(sql, meter)
    prop = meter.over_property or ""
    columns = [f"COUNT(*) FILTER (WHERE {match}) AS n{index}"]
    agg = meter.aggregation
    if agg == "count":
        columns.append(f"COUNT(*) FILTER (WHERE {match}) AS q{index}")
    elif agg in ("sum", "max"):
        func = sql.sum_function if agg == "sum" else sql.max_function
        columns.append(f"{func}({sql.number(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_number(prop)}) AS q{index}")
    elif agg == "unique_count":
        columns.append(f"COUNT(DISTINCT {sql.raw(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_present(prop)}) AS q{index}")
    if agg != "count":
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_missing(prop)}) AS m{index}")
    if agg in NUMERIC_AGGREGATIONS:
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_present(prop)} "
                       f"AND NOT {sql.is_number(prop)}) AS x{index}")
    return columns


def _windows_source(sql: JsonSql, windows: Sequence[Window]) -> str:
    """A FROM item `w(k, c, s, e)` holding the windows, from one JSON parameter."""
    stamp = sqlite_datetime if sql.dialect == "sqlite" else datetime.isoformat
    payload = json.dumps([[w.key, w.customer_id, stamp(w.start), stamp(w.end)]
                          for w in windows])
    p = sql.params.add(payload)
    if sql.dialect == "postgresql":
        return (f"(SELECT x->>0 AS k, x->>1 AS c, CAST(x->>2 AS timestamp) AS s, "
                f"CAST(x->>3 AS timestamp) AS e FROM jsonb_array_elements(CAST({p} AS jsonb)) "
                f"AS x) w")
    return (f"(SELECT json_extract(value, '$[0]') AS k, json_extract(value, '$[1]') AS c, "
            f"json_extract(value, '$[2]') AS s, json_extract(value, '$[3]') AS e "
            f"FROM json_each({p})) w")


def _scope(sql: JsonSql, windows: Sequence[Window], meters: Sequence[Meter]) -> str:
    names = ", ".join(sql.params.add(n) for n in sorted({m.event_name for m in meters}))
    return (f"FROM {_windows_source(sql, windows)} "
            f"JOIN event e ON e.customer_id = w.c AND e.ts >= w.s AND e.ts < w.e "
            f"WHERE e.event_name IN ({names})")


def _quantity(value: object) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        raise TypeError("a float reached metering")
    return Decimal(value) if isinstance(value, Decimal | int) else Decimal(str(value))


def measure(conn: Connection, meters: Mapping[str, Meter], windows: Sequence[Window]) -> Usage:
    """Usage of each window's meters (every window gets every one of its meters, 0 when
    no event matched)."""
    groups: dict[tuple[str, ...], list[Window]] = {}
    for window in windows:
        groups.setdefault(tuple(sorted(set(window.meters))), []).append(window)
    result: Usage = {w.key: {} for w in windows}
    for meter_keys, members in groups.items():
        if not meter_keys:
            continue
        chosen = [meters[k] for k in meter_keys]
        rows = _grouped(conn, chosen, members)
        last = {m.key: _last_values(conn, m, members)
                for m in chosen if m.aggregation == "last"}
        for window in members:
            row = rows.get(window.key, {})
            usage = result[window.key]
            for i, meter in enumerate(chosen):
                quantity = (last[meter.key].get(window.key, Decimal(0))
                            if meter.aggregation == "last" else _quantity(row.get(f"q{i}")))
                usage[meter.key] = MeterUsage(
                    meter=meter.key, quantity=quantity,
                    matched_events=int(row.get(f"n{i}") or 0),
                    skipped_missing=int(row.get(f"m{i}") or 0),
                    skipped_not_number=int(row.get(f"x{i}") or 0))
    return result


def measure_each(conn: Connection, meters: Mapping[str, Meter], windows: Sequence[Window]
                 ) -> tuple[Usage, dict[str, str]]:
    """Like `measure`, but a window whose usage cannot be measured (a value the database
    refuses) costs no other window: it is left out and named, with the reason. The
    windows are measured together; only when that fails are they split (in halves, each
    under a savepoint) until the failing ones are found."""
    from billing_core.errors import describe

    failed: dict[str, str] = {}
    usage: Usage = {}

    def attempt(part: Sequence[Window]) -> None:
        try:
            with conn.begin_nested():
                usage.update(measure(conn, meters, part))
        except Exception as exc:
            if len(part) == 1:
                failed[part[0].key] = describe(exc)
                return
            middle = len(part) // 2
            attempt(part[:middle])
            attempt(part[middle:])

    if windows:
        attempt(windows)
    return usage, failed


def _grouped(conn: Connection, meters: Sequence[Meter], windows: Sequence[Window]
             ) -> dict[str, dict[str, Any]]:
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    columns = [c for i, m in enumerate(meters) for c in _aggregate_columns(sql, i, m)]
    query = (f"SELECT w.k AS window_key, {', '.join(columns)} {_scope(sql, windows, meters)} "
             f"GROUP BY w.k")
    return {row["window_key"]: dict(row)
            for row in conn.execute(text(query), params.values).mappings()}


def _last_values(conn: Connection, meter: Meter, windows: Sequence[Window]
                 ) -> dict[str, Decimal]:
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    prop = meter.over_property or ""
    query = (f"SELECT window_key, value FROM ("
             f"SELECT w.k AS window_key, {sql.number(prop)} AS value, "
             f"ROW_NUMBER() OVER (PARTITION BY w.k ORDER BY e.ts DESC, e.event_id DESC) AS rn "
             f"{_scope(sql, windows, [meter])} "
             f"AND {_predicate(sql, meter)} AND {sql.is_number(prop)}) ranked WHERE rn = 1")
    return {key: _quantity(value) for key, value in conn.execute(text(query), params.values)}
