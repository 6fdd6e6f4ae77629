"""Measuring usage: each meter aggregated over each window of time, in SQL.

A window is one customer's half-open time range [start, end) under a caller's key: a
subscription's billing cycle, a preview up to now, a day of `billing usage --by day`, a
past cycle re-measured for late usage. The windows travel to the database as one JSON
parameter; one GROUP BY per set of meters computes every count/sum/max/min/avg/
unique_count meter of every window at once, each meter an aggregate with its own FILTER
(WHERE event_name AND filter). `last` meters need an ordering, `weighted_sum` meters an
integral over time, and a percentage price's free allowance a running total in event
order: each takes one more query. Nothing is aggregated in Python: on SQLite the exact
decimal sum, min, max, product and running sum are SQL functions registered on the
connection. Python only divides: `avg` = exact sum / count and `weighted_sum` = exact
integral / window length, each rounded half-up to 18 decimal places.

weighted_sum (Lago's definition): each event's value is a change of a level (+20 GB,
-10 GB); the level (starting at 0, or with `carry_over` at the sum of the subscription's
earlier events) is integrated over the window and divided by the window's length:
sum(value x (end - ts)) + initial x (end - start), over (end - start), in microseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, text

from billing_core.catalog.models import NUMERIC_AGGREGATIONS, Meter
from billing_core.db.types import sqlite_datetime
from billing_core.metering.json_sql import JsonSql, Params, json_sql
from billing_core.money import EXACT

AVERAGE_PLACES = Decimal(1).scaleb(-18)


@dataclass(frozen=True)
class Allowance:
    """A percentage price's free allowance on a meter: the first `events` events or
    `amount` of the sum, whichever is used up first (0: no such limit)."""

    meter: str
    events: int
    amount: Decimal


@dataclass(frozen=True)
class Window:
    """Measure `meters` over one customer's events with start <= ts < end (naive UTC).
    `carry_from`: where a `carry_over` weighted_sum's level starts (the subscription's
    first instant)."""

    key: str
    customer_id: str
    start: datetime
    end: datetime
    meters: tuple[str, ...]
    carry_from: datetime | None = None
    allowances: tuple[Allowance, ...] = ()


@dataclass(frozen=True)
class MeterUsage:
    """One window's usage of one meter. `counted_events`: the events whose value counts
    (all matching events for `count`); `free_*`: the part inside an allowance."""

    meter: str
    quantity: Decimal
    matched_events: int = 0
    skipped_missing: int = 0
    skipped_not_number: int = 0
    counted_events: int = 0
    free_amount: Decimal = Decimal(0)
    free_events: int = 0


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


def distinct_apart(dialect: str) -> bool:
    """PostgreSQL counts distinct values in a statement of their own: a COUNT(DISTINCT)
    in the main GROUP BY would keep the whole aggregation from running in parallel."""
    return dialect == "postgresql"


def _distinct_counts(conn: Connection, meter: Meter, windows: Sequence[Window]
                     ) -> dict[str, Decimal]:
    """Per window: how many distinct values of the property the matching events hold
    (DISTINCT, then a plain count: both steps can run in parallel)."""
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    prop = meter.over_property or ""
    query = (f"SELECT window_key, COUNT(*) AS q FROM (SELECT DISTINCT w.k AS window_key, "
             f"{sql.raw(prop)} AS v {_scope(sql, windows, [meter])} "
             f"AND {_predicate(sql, meter)} AND {sql.is_present(prop)}) d GROUP BY window_key")
    return {key: Decimal(int(q)) for key, q in conn.execute(text(query), params.values)}


def _aggregate_columns(sql: JsonSql, index: int, meter: Meter) -> list[str]:
    """SELECT columns for one meter: q{i} quantity, n{i} matched, m{i} missing, x{i} NaN."""
    match = _predicate(sql, meter)
    prop = meter.over_property or ""
    columns = [f"COUNT(*) FILTER (WHERE {match}) AS n{index}"]
    agg = meter.aggregation
    if agg == "count":
        columns.append(f"COUNT(*) FILTER (WHERE {match}) AS q{index}")
    elif agg in ("sum", "max", "min", "avg"):
        func = {"sum": sql.sum_function, "avg": sql.sum_function, "max": sql.max_function,
                "min": sql.min_function}[agg]
        columns.append(f"{func}({sql.number(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_number(prop)}) AS q{index}")
    elif agg == "unique_count" and not distinct_apart(sql.dialect):
        columns.append(f"COUNT(DISTINCT {sql.raw(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_present(prop)}) AS q{index}")
    if agg != "count":
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_missing(prop)}) AS m{index}")
    if agg in NUMERIC_AGGREGATIONS:
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_present(prop)} "
                       f"AND NOT {sql.is_number(prop)}) AS x{index}")
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_number(prop)}) "
                       f"AS c{index}")
    return columns


def _windows_source(sql: JsonSql, windows: Sequence[Window]) -> str:
    """A FROM item `w(k, c, s, e, f)` holding the windows (f: where a carried-over level
    starts), from one JSON parameter."""
    stamp = sqlite_datetime if sql.dialect == "sqlite" else datetime.isoformat
    payload = json.dumps([[w.key, w.customer_id, stamp(w.start), stamp(w.end),
                           stamp(min(w.carry_from or w.start, w.start))] for w in windows])
    p = sql.params.add(payload)
    if sql.dialect == "postgresql":
        return (f"(SELECT x->>0 AS k, x->>1 AS c, CAST(x->>2 AS timestamp) AS s, "
                f"CAST(x->>3 AS timestamp) AS e, CAST(x->>4 AS timestamp) AS f "
                f"FROM jsonb_array_elements(CAST({p} AS jsonb)) AS x) w")
    return (f"(SELECT json_extract(value, '$[0]') AS k, json_extract(value, '$[1]') AS c, "
            f"json_extract(value, '$[2]') AS s, json_extract(value, '$[3]') AS e, "
            f"json_extract(value, '$[4]') AS f FROM json_each({p})) w")


def _scope(sql: JsonSql, windows: Sequence[Window], meters: Sequence[Meter],
           since: str = "w.s") -> str:
    names = ", ".join(sql.params.add(n) for n in sorted({m.event_name for m in meters}))
    return (f"FROM {_windows_source(sql, windows)} "
            f"JOIN event e ON e.customer_id = w.c AND e.ts >= {since} AND e.ts < w.e "
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
        apart = ("last", "weighted_sum",
                 *(("unique_count",) if distinct_apart(conn.dialect.name) else ()))
        special = {m.key: (_last_values(conn, m, members) if m.aggregation == "last"
                           else _distinct_counts(conn, m, members)
                           if m.aggregation == "unique_count"
                           else _weighted_sums(conn, m, members))
                   for m in chosen if m.aggregation in apart}
        for window in members:
            row = rows.get(window.key, {})
            usage = result[window.key]
            for i, meter in enumerate(chosen):
                if meter.key in special:
                    quantity = special[meter.key].get(window.key, Decimal(0))
                elif meter.aggregation == "avg":
                    count = int(row.get(f"c{i}") or 0)
                    quantity = _rounded(_quantity(row.get(f"q{i}")), count) if count \
                        else Decimal(0)
                else:
                    quantity = _quantity(row.get(f"q{i}"))
                matched = int(row.get(f"n{i}") or 0)
                usage[meter.key] = MeterUsage(
                    meter=meter.key, quantity=quantity, matched_events=matched,
                    skipped_missing=int(row.get(f"m{i}") or 0),
                    skipped_not_number=int(row.get(f"x{i}") or 0),
                    counted_events=int(row.get(f"c{i}") or 0)
                    if meter.aggregation in NUMERIC_AGGREGATIONS else matched)
    _measure_allowances(conn, meters, windows, result)
    return result


def _rounded(numerator: Decimal, denominator: int | Decimal) -> Decimal:
    """numerator / denominator rounded half-up to 18 decimal places, without exponent."""
    from billing_core.money import normalize_quantity, ratio

    return normalize_quantity(ratio(numerator, denominator).quantize(
        AVERAGE_PLACES, rounding=ROUND_HALF_UP))


def _measure_allowances(conn: Connection, meters: Mapping[str, Meter],
                        windows: Sequence[Window], result: Usage) -> None:
    """Fill in free_amount / free_events for windows with allowances."""
    groups: dict[Allowance, list[Window]] = {}
    for window in windows:
        for allowance in window.allowances:
            if allowance.events > 0 or allowance.amount > 0:
                groups.setdefault(allowance, []).append(window)
    for allowance, members in groups.items():
        meter = meters[allowance.meter]
        found = _allowance_values(conn, meter, allowance, members)
        for window in members:
            current = result[window.key].get(meter.key)
            if current is None:
                continue
            first_n, free_events = found.get(window.key, (Decimal(0), 0))
            limits = [current.quantity]
            if allowance.events > 0:
                limits.append(first_n)
            if allowance.amount > 0:
                limits.append(allowance.amount)
            result[window.key][meter.key] = replace(
                current, free_amount=max(Decimal(0), min(limits)), free_events=free_events)


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


def _allowance_values(conn: Connection, meter: Meter, allowance: Allowance,
                      windows: Sequence[Window]) -> dict[str, tuple[Decimal, int]]:
    """Per window: the sum of the first `events` events, and how many events (in time
    order, within the first `events`) keep the running total below `amount`."""
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    prop = meter.over_property or ""
    running = "decimal_running_sum" if sql.dialect == "sqlite" else "SUM"
    order = "PARTITION BY w.k ORDER BY e.ts, e.event_id"
    value = sql.number(prop)
    inner = (f"SELECT w.k AS window_key, {value} AS v, ROW_NUMBER() OVER ({order}) AS rn, "
             f"{running}({value}) OVER ({order} ROWS UNBOUNDED PRECEDING) AS running "
             f"{_scope(sql, windows, [meter])} "
             f"AND {_predicate(sql, meter)} AND {sql.is_number(prop)}")
    within = f"rn <= {int(allowance.events)}" if allowance.events > 0 else "1 = 1"
    below = "1 = 1"
    if allowance.amount > 0:
        limit = params.add(format(allowance.amount, "f"))
        below = (f"decimal_cmp(running, {limit}) < 0" if sql.dialect == "sqlite"
                 else f"running < CAST({limit} AS numeric)")
    query = (f"SELECT window_key, {sql.sum_function}(v) FILTER (WHERE {within}) AS first_n, "
             f"COUNT(*) FILTER (WHERE {within} AND {below}) AS free_events "
             f"FROM ({inner}) ranked GROUP BY window_key")
    return {key: (_quantity(first), int(free or 0))
            for key, first, free in conn.execute(text(query), params.values)}


def _weighted_sums(conn: Connection, meter: Meter, windows: Sequence[Window]
                   ) -> dict[str, Decimal]:
    """Per window: the level's integral over the window divided by its length."""
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    value = sql.number(meter.over_property or "")
    if sql.dialect == "sqlite":
        weight = f"decimal_mul({value}, epoch_us(w.e) - epoch_us(e.ts))"
    else:
        weight = f"({value} * (EXTRACT(EPOCH FROM (w.e - e.ts)) * 1000000))"
    since = "w.f" if meter.carry_over else "w.s"
    query = (f"SELECT w.k AS window_key, "
             f"{sql.sum_function}(CASE WHEN e.ts >= w.s THEN {weight} END) AS integral, "
             f"{sql.sum_function}(CASE WHEN e.ts < w.s THEN {value} END) AS initial "
             f"{_scope(sql, windows, [meter], since)} "
             f"AND {_predicate(sql, meter)} AND {sql.is_number(meter.over_property or '')} "
             f"GROUP BY w.k")
    found = {key: (_quantity(integral), _quantity(initial))
             for key, integral, initial in conn.execute(text(query), params.values)}
    result = {}
    for window in windows:
        length = _microseconds(window.end - window.start)
        integral, initial = found.get(window.key, (Decimal(0), Decimal(0)))
        if length <= 0:
            result[window.key] = Decimal(0)
            continue
        total = EXACT.add(integral, EXACT.multiply(initial, Decimal(length)))
        result[window.key] = _rounded(total, length)
    return result


def _microseconds(span: timedelta) -> int:
    return (span.days * 86400 + span.seconds) * 1_000_000 + span.microseconds


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
