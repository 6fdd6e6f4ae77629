"""Measuring usage: each meter aggregated over each window of time, in SQL.

A window is one customer's half-open time range [start, end) under a caller's key: a
subscription's billing cycle, a preview up to now, a day of `billing usage --by day`, a
past cycle re-measured for late usage. The windows travel to the database as typed
arrays (PostgreSQL) or a temporary table (SQLite). One GROUP BY computes every count/sum/
max/min/avg/unique_count meter of every window at once, with each meter's test (event
name and filter) evaluated once per event:
- SQLite, one statement per set of meters (each window's events are read through the
  index): a `meter_stats` aggregate per meter gives its counts and exact value together;
- PostgreSQL, one statement for all windows (one parallel scan, aggregated in part in
  each worker); unique counts are a statement of their own, so the main one stays
  parallel.
`last` meters need an ordering, `weighted_sum` meters an integral over time, and a
percentage price's free allowance a running total in event order: each takes one more
query. No event row is fetched into Python: on SQLite the exact decimal aggregates
(`meter_stats`, `decimal_sum`, the running sum, the product) are functions registered on
the connection, which SQLite calls as it scans. Python only divides: `avg` = exact sum /
count and `weighted_sum` = exact integral / window length, each rounded half-up to 18
decimal places.

weighted_sum (Lago's definition): each event's value is a change of a level (+20 GB,
-10 GB); the level (starting at 0, or with `carry_over` at the sum of the subscription's
earlier events) is integrated over the window and divided by the window's length:
sum(value x (end - ts)) + initial x (end - start), over (end - start), in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, text

from billing_core.catalog.models import NUMERIC_AGGREGATIONS, Meter
from billing_core.db.event_layout import EVENT_MONTH_SQL, event_month, last_instant
from billing_core.db.types import sqlite_datetime
from billing_core.metering import rollup
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


def distinct_apart(dialect: str) -> bool:
    """PostgreSQL counts distinct values in a statement of their own: a COUNT(DISTINCT)
    in the main GROUP BY would keep the whole aggregation from running in parallel."""
    return dialect == "postgresql"


def _distinct_counts(conn: Connection, meter: Meter, windows: Sequence[Window]
                     ) -> dict[str, Decimal]:
    """Per window: how many distinct values of the property the matching events hold.
    From the roll-ups where they hold this meter's values (PostgreSQL, up to date); from
    raw events otherwise (DISTINCT, then a plain count: both steps can run in parallel)."""
    found = rollup.state(conn)
    print_ = rollup.value_fingerprint(meter) if found is not None else ""
    if found is not None and found.current and print_ in found.fingerprints:
        whole, edges = rollup.whole_and_edges(windows)
        return {key: Decimal(count) for key, count in
                rollup.distinct_counts(conn, meter, print_, whole, edges).items()}
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    prop = meter.over_property or ""
    query = (f"SELECT window_key, COUNT(*) AS q FROM (SELECT DISTINCT w.k AS window_key, "
             f"{sql.raw(prop)} AS v {_scope(conn, sql, windows, [meter])} "
             f"AND {sql.meter_test(meter)} AND {sql.is_present(prop)}) d GROUP BY window_key")
    with _scanning(conn, windows):
        return {key: Decimal(int(q)) for key, q in conn.execute(text(query), params.values)}


def _sqlite_columns(sql: JsonSql, index: int, meter: Meter) -> list[str]:
    """SQLite SELECT columns for one meter. A `count` meter: n{i}, its matched events.
    Any other: s{i}, one `meter_stats` aggregate giving the matched events, those with
    the property present, those with a number, and the exact sum/max/min, so the meter's
    test runs once per event; a unique count adds q{i}, its COUNT(DISTINCT)."""
    match = sql.meter_test(meter)
    prop = meter.over_property or ""
    agg = meter.aggregation
    if agg == "count":
        return [f"COUNT(*) FILTER (WHERE {match}) AS n{index}"]
    op = {"sum": "sum", "avg": "sum", "max": "max", "min": "min"}.get(agg, "none")
    value = sql.raw(prop) if op != "none" else "NULL"
    columns = [f"meter_stats('{op}', {sql.typeof(prop)}, {value}) FILTER (WHERE {match}) "
               f"AS s{index}"]
    if agg == "unique_count":
        columns.append(f"COUNT(DISTINCT {sql.raw(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_present(prop)}) AS q{index}")
    return columns


def _counts(row: Mapping[str, Any], index: int, meter: Meter
            ) -> tuple[int, int, int, object]:
    """(matched, present, numbers, quantity as the database gave it) of one meter. The
    skip counts follow: missing = matched - present, not a number = present - numbers."""
    stats = row.get(f"s{index}")
    if stats is not None:
        found = str(stats).split(" ")
        value = row.get(f"q{index}") if meter.aggregation == "unique_count" else \
            None if found[3] == "-" else found[3]
        return int(found[0]), int(found[1]), int(found[2]), value
    matched = int(row.get(f"n{index}") or 0)
    if meter.aggregation == "count":
        return matched, matched, 0, matched
    return (matched, int(row.get(f"p{index}") or 0), int(row.get(f"c{index}") or 0),
            row.get(f"q{index}"))


WINDOW_TABLE = "measure_window"


def _windows_source(conn: Connection, sql: JsonSql, windows: Sequence[Window]) -> str:
    """A FROM item `w(k, c, s, e, f)` holding the windows (f: where a carried-over level
    starts). PostgreSQL: typed arrays, so the join reads plain columns with no cast per
    row. SQLite: a temporary table of this connection, read in rowid order, so the
    GROUP BY w.i that follows needs no sort; it also holds the months the index of events
    is read over (`ms`, `mf`: of s and f; `me`: of the window's last instant), declared
    without a type: a TEXT column's affinity would keep SQLite from comparing them with
    the index's month expression, which has none, through the index."""
    rows = [(w.key, w.customer_id, w.start, w.end, min(w.carry_from or w.start, w.start))
            for w in windows]
    if sql.dialect == "postgresql":
        keys, customers, starts, ends, firsts = (
            sql.params.add(list(column)) for column in zip(*rows, strict=True))
        return (f"unnest(CAST({keys} AS text[]), CAST({customers} AS text[]), "
                f"CAST({starts} AS timestamp[]), CAST({ends} AS timestamp[]), "
                f"CAST({firsts} AS timestamp[])) AS w(k, c, s, e, f)")
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {WINDOW_TABLE} (i INTEGER PRIMARY KEY, "
                f"k TEXT NOT NULL, c TEXT NOT NULL, s TEXT NOT NULL, e TEXT NOT NULL, "
                f"f TEXT NOT NULL, ms NOT NULL, mf NOT NULL, me NOT NULL)")
    raw.execute(f"DELETE FROM {WINDOW_TABLE}")
    raw.executemany(f"INSERT INTO {WINDOW_TABLE} (k, c, s, e, f, ms, mf, me) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(k, c, sqlite_datetime(s), sqlite_datetime(e), sqlite_datetime(f),
                      event_month(s), event_month(f), event_month(last_instant(e)))
                     for k, c, s, e, f in rows])
    return f"temp.{WINDOW_TABLE} w"


def _scope(conn: Connection, sql: JsonSql, windows: Sequence[Window],
           meters: Sequence[Meter], since: str = "w.s") -> str:
    """FROM ... WHERE: each window's events of the meters' names (call it right before
    running the query: on SQLite it fills the windows table)."""
    names = ", ".join(sql.params.add(n) for n in sorted({m.event_name for m in meters}))
    return (f"FROM {_windows_source(conn, sql, windows)} "
            f"JOIN event e ON e.customer_id = w.c AND e.ts >= {since} AND e.ts < w.e "
            f"WHERE e.event_name IN ({names}){_months(sql, since)}")


def _months(sql: JsonSql, since: str) -> str:
    """SQLite: the months of the window (from `since`), so that its events are found
    through their index by customer, name and month (`billing_core.db.event_layout`);
    the times above then hold the rows of those months to the window exactly."""
    if sql.dialect != "sqlite":
        return ""
    first = "w.mf" if since == "w.f" else "w.ms"
    return f" AND {EVENT_MONTH_SQL.format(ts='e.ts')} BETWEEN {first} AND w.me"


def _group_key(sql: JsonSql) -> str:
    """GROUP BY this for one row per window (SQLite: the table's order, no sort)."""
    return "w.i" if sql.dialect == "sqlite" else "w.k"


def _quantity(value: object) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        raise TypeError("a float reached metering")
    return Decimal(value) if isinstance(value, Decimal | int) else Decimal(str(value))


def measure(conn: Connection, meters: Mapping[str, Meter], windows: Sequence[Window]) -> Usage:
    """Usage of each window's meters (every window gets every one of its meters, 0 when
    no event matched)."""
    result: Usage = {w.key: {} for w in windows}
    for meter_keys, members in _statements(conn.dialect.name, windows):
        chosen = [meters[k] for k in meter_keys]
        rows = _grouped(conn, chosen, members)
        apart = ("last", "weighted_sum",
                 *(("unique_count",) if distinct_apart(conn.dialect.name) else ()))
        special = {}
        for m in chosen:
            if m.aggregation in apart:
                having = [w for w in members if m.key in w.meters]
                special[m.key] = (_last_values(conn, m, having) if m.aggregation == "last"
                                  else _distinct_counts(conn, m, having)
                                  if m.aggregation == "unique_count"
                                  else _weighted_sums(conn, m, having))
        for window in members:
            row = rows.get(window.key, {})
            usage = result[window.key]
            for i, meter in enumerate(chosen):
                if meter.key not in window.meters:
                    continue
                matched, present, numbers, raw = _counts(row, i, meter)
                if meter.key in special:
                    quantity = special[meter.key].get(window.key, Decimal(0))
                elif meter.aggregation == "avg":
                    quantity = _rounded(_quantity(raw), numbers) if numbers else Decimal(0)
                else:
                    quantity = _quantity(raw)
                numeric = meter.aggregation in NUMERIC_AGGREGATIONS
                usage[meter.key] = MeterUsage(
                    meter=meter.key, quantity=quantity, matched_events=matched,
                    skipped_missing=matched - present,
                    skipped_not_number=present - numbers if numeric else 0,
                    counted_events=numbers if numeric else matched)
    _measure_allowances(conn, meters, windows, result)
    return result


def _statements(dialect: str, windows: Sequence[Window]
                ) -> list[tuple[tuple[str, ...], list[Window]]]:
    """Which windows share one GROUP BY, over which meters. SQLite reads each window's
    events through the index, so windows are grouped by their set of meters and no row
    computes a meter its window lacks. PostgreSQL reads the period in one (parallel)
    scan per statement, so one statement over every meter costs less than one scan per
    set of meters."""
    groups: dict[tuple[str, ...], list[Window]] = {}
    for window in windows:
        if window.meters:
            groups.setdefault(tuple(sorted(set(window.meters))), []).append(window)
    if dialect == "postgresql" and len(groups) > 1:
        every = tuple(sorted({k for keys in groups for k in keys}))
        return [(every, [w for w in windows if w.meters])]
    return list(groups.items())


def _rounded(numerator: Decimal, denominator: int | Decimal) -> Decimal:
    """numerator / denominator rounded half-up to 18 decimal places, without exponent."""
    from billing_core.money import EXACT_QUANTIZE, normalize_quantity, ratio

    # in a context of 120 digits: the thread's default (28) cannot hold 18 decimals of a
    # quantity above 10^10 and would refuse it
    return normalize_quantity(ratio(numerator, denominator).quantize(
        AVERAGE_PLACES, rounding=ROUND_HALF_UP, context=EXACT_QUANTIZE))


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


def _grouped_in_workers(conn: Connection, sql: JsonSql, meters: Sequence[Meter],
                        windows: Sequence[Window], scan: bool = True
                        ) -> dict[str, dict[str, Any]]:
    """PostgreSQL: one GROUP BY window with a FILTER per count, sum, max or min, so each
    parallel worker aggregates its share of the events (a partial aggregate) and the
    leader only combines the workers' rows: n{i}, q{i}, p{i}, c{i}, as `_counts` reads
    them (unique counts are a statement of their own here). A meter's test is repeated
    in each of its FILTER clauses; each look-up is kept to its cheapest exact form (a
    presence is `->>` not null; a string equality needs no type test unless the value
    reads like a number or a boolean)."""
    columns: list[str] = []
    for i, meter in enumerate(meters):
        match = sql.meter_test(meter)
        columns.append(f"COUNT(*) FILTER (WHERE {match}) AS n{i}")
        agg, prop = meter.aggregation, meter.over_property or ""
        if agg == "count":
            continue
        if agg in ("sum", "max", "min", "avg"):
            func = {"sum": "SUM", "avg": "SUM", "max": "MAX", "min": "MIN"}[agg]
            columns.append(f"{func}({sql.number(prop)}) FILTER (WHERE {match}) AS q{i}")
        columns.append(f"COUNT({sql.string(prop)}) FILTER (WHERE {match}) AS p{i}")
        if agg in NUMERIC_AGGREGATIONS:
            columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_number(prop)}) "
                           f"AS c{i}")
    query = (f"SELECT w.k AS window_key, {', '.join(columns)} "
             f"{_scope(conn, sql, windows, meters)} GROUP BY w.k")
    with _scanning(conn, windows if scan else ()):
        return {row["window_key"]: dict(row)
                for row in conn.execute(text(query), sql.params.values).mappings()}


SCAN_FROM_WINDOWS = 50
SCAN_SETTINGS = {"enable_nestloop": "off", "enable_mergejoin": "off", "work_mem": "64MB"}


@contextmanager
def _scanning(conn: Connection, windows: Sequence[Window]) -> Iterator[None]:
    """PostgreSQL, many windows (a period's draft): read the events with one parallel
    scan and a hash join to the windows, each worker aggregating its share in memory.
    Left to itself, with fresh statistics the planner prefers one index look-up per
    window (random heap reads in one process: 44.5 s against 18.2 s at 10M events and
    10,000 windows), and with 10,000 windows a merge join that sorts every event on disk
    (it cannot know the windows' customers are distinct); with the default 4 MB of
    work_mem the workers' aggregates spill to disk. At 10M events the two statements took
    10.6 and 4.8 s that way, 5.4 and 1.7 s this way. A few windows (one customer's
    preview) keep the planner's choice. The settings found are restored."""
    if conn.dialect.name != "postgresql" or len(windows) < SCAN_FROM_WINDOWS:
        yield
        return
    found = {name: conn.exec_driver_sql(f"SELECT current_setting('{name}')").scalar_one()
             for name in SCAN_SETTINGS}
    for name, value in SCAN_SETTINGS.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield   # on an error, the rollback (to the savepoint) undoes the SET LOCAL itself
    for name, value in found.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def _grouped(conn: Connection, meters: Sequence[Meter], windows: Sequence[Window]
             ) -> dict[str, dict[str, Any]]:
    """One row per window: each meter's counts and (but for `last`, `weighted_sum` and,
    on PostgreSQL, `unique_count`) its quantity."""
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    if sql.dialect != "sqlite":
        found = rollup.state(conn)
        if found is not None and found.current:
            return _grouped_from_rollups(conn, meters, windows, found.fingerprints)
        return _grouped_in_workers(conn, sql, meters, windows)
    columns = [c for i, m in enumerate(meters) for c in _sqlite_columns(sql, i, m)]
    query = (f"SELECT w.k AS window_key, {', '.join(columns)} "
             f"{_scope(conn, sql, windows, meters)} GROUP BY {_group_key(sql)}")
    return {row["window_key"]: dict(row)
            for row in conn.execute(text(query), params.values).mappings()}


def _grouped_from_rollups(conn: Connection, meters: Sequence[Meter],
                          windows: Sequence[Window], held: frozenset[str]
                          ) -> dict[str, dict[str, Any]]:
    """PostgreSQL, roll-ups up to date: `_grouped_in_workers`' rows, with each window's
    whole UTC days read from the roll-ups of the meters they hold, and the rest (partial
    days at the window's ends; meters without a roll-up) from raw events."""
    tests = {i: f for i, f in ((i, rollup.fingerprint(m)) for i, m in enumerate(meters))
             if f in held}
    rolled = [m for i, m in enumerate(meters) if i in tests]
    raw_meters = [(i, m) for i, m in enumerate(meters) if i not in tests]
    parts: dict[str, list[dict[str, Any]]] = {w.key: [] for w in windows}
    whole, pieces = rollup.whole_and_edges(windows) if rolled else ([], [])
    by_key = {w.key: w for w in windows}
    edges = [replace(by_key[key], key=str(n), start=start, end=end)
             for n, (key, _, start, end) in enumerate(pieces)]
    edge_of = {str(n): key for n, (key, _, _, _) in enumerate(pieces)}
    with _scanning(conn, windows):   # one hash join, aggregated in memory
        found_whole = rollup.read(conn, tests, whole)
    for key, values in found_whole.items():
        parts[key].append(rollup.as_row(values, meters))
    if raw_meters:   # meters no roll-up holds: their whole windows, from raw events
        params = Params()
        found = _grouped_in_workers(conn, json_sql(conn.dialect.name, params),
                                    [m for _, m in raw_meters], windows)
        for key, row in found.items():
            parts[key].append(_reindexed(row, [i for i, _ in raw_meters]))
    if edges and rolled:   # partial days of the rolled meters, few events each
        params = Params()
        found = _grouped_in_workers(conn, json_sql(conn.dialect.name, params), rolled,
                                    edges, scan=False)
        indices = list(tests)
        for key, row in found.items():
            parts[edge_of[key]].append(_reindexed(row, indices))
    return {key: rollup.merged(found_parts, meters) | {"window_key": key}
            for key, found_parts in parts.items() if found_parts}


def _reindexed(row: Mapping[str, Any], indices: Sequence[int]) -> dict[str, Any]:
    """A row computed for a subset of the meters, with each column renamed to the
    meter's index in the whole list (n0 of the subset -> n{indices[0]})."""
    return {f"{name[0]}{indices[int(name[1:])]}": value for name, value in row.items()
            if name != "window_key"}


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
             f"{_scope(conn, sql, windows, [meter])} "
             f"AND {sql.meter_test(meter)} AND {sql.is_number(prop)}")
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
             f"{_scope(conn, sql, windows, [meter], since)} "
             f"AND {sql.meter_test(meter)} AND {sql.is_number(meter.over_property or '')} "
             f"GROUP BY {_group_key(sql)}")
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
             f"{_scope(conn, sql, windows, [meter])} "
             f"AND {sql.meter_test(meter)} AND {sql.is_number(prop)}) ranked WHERE rn = 1")
    return {key: _quantity(value) for key, value in conn.execute(text(query), params.values)}
