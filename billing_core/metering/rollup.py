"""PostgreSQL: usage rolled up per meter test, customer and UTC day, as events are stored.

A meter's test is its event name, filter and property; its fingerprint is a hash of the
exact SQL that evaluates them, so two meters with the same test (a sum and a max of one
property) share a roll-up, and a meter whose test changes gets a new one. Each roll-up
row holds, for one customer and day, what the raw GROUP BY in `aggregate` computes for a
window: the matching events, those with the property present, those with a number, and
the exact sum, max and min of the numbers.

Which events the roll-ups hold: every event has a `seq` from a sequence, and the one
state row's watermark says the roll-ups hold exactly the events with seq <= watermark.
`roll_up` (after each ingest) adds the events above the watermark and moves
it, and backfills a test the roll-ups do not hold yet. How far it may go comes from
`settled_seq`, which takes, for an instant, an exclusive advisory lock that each chunk of
an ingest holds shared (`hold_for_storing`) for its whole transaction: once it has it, no
chunk is half stored, so every seq up to the sequence's last value is committed (or
rolled back, a gap), and chunks that start later get higher numbers. Roll-ups take turns
on the state row. Metering uses the roll-ups only when the sequence has given no number
above the watermark (nothing stored since, committed or not); otherwise it reads raw
events, as it always could. A roll-up that fails to build
is dropped, and metering reads raw events for its meters: never an ingest's problem.

Windows that start or end inside a UTC day (a customer billed at local midnight) read
those partial days from raw events; the whole days in between come from the roll-ups.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text

from billing_core.catalog.models import Meter
from billing_core.errors import describe
from billing_core.metering.json_sql import JsonSql, Params, json_sql

log = logging.getLogger(__name__)

VERSION = 1   # part of every fingerprint: raise it when what a roll-up row means changes
LOCK = "hashtext('billflow:usage_rollup@' || current_schema())"


def maintained(dialect: str) -> bool:
    """Only PostgreSQL keeps roll-ups: SQLite reads each window's events through the index
    and meets its aggregate target without them, where its ingest has no time to spare."""
    return dialect == "postgresql"


def hold_for_storing(conn: Connection) -> None:
    """Take the roll-up lock shared for this transaction (a chunk about to store events)."""
    if maintained(conn.dialect.name):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({LOCK})")


def _columns(sql: JsonSql, meter: Meter, i: int) -> list[str]:
    """A roll-up's aggregates of one test, as in `aggregate._grouped_in_workers`: the
    matching events, those with the property present, those with a number, and only the
    one of sum, max or min the meter's aggregation reads (each aggregate costs about as
    much as the scan: a sum and a max of one property are two roll-ups)."""
    match, prop = sql.meter_test(meter), meter.over_property
    matched = f"COUNT(*) FILTER (WHERE {match}) AS m{i}"
    if prop is None:
        return [matched, f"COUNT(*) FILTER (WHERE {match}) AS p{i}", f"0 AS n{i}",
                f"NULL::numeric AS t{i}", f"NULL::numeric AS h{i}", f"NULL::numeric AS l{i}"]
    number = sql.number(prop)
    wanted = {"sum": "t", "avg": "t", "max": "h", "min": "l"}.get(meter.aggregation)
    values = [f"{function}({number}) FILTER (WHERE {match}) AS {name}{i}" if name == wanted
              else f"NULL::numeric AS {name}{i}"
              for function, name in (("SUM", "t"), ("MAX", "h"), ("MIN", "l"))]
    return [matched, f"COUNT({sql.string(prop)}) FILTER (WHERE {match}) AS p{i}",
            f"COUNT(*) FILTER (WHERE {match} AND {sql.is_number(prop)}) AS n{i}", *values]


def fingerprint(meter: Meter) -> str:
    """A hash of the SQL (and its bound values) that tests and reads this meter's events."""
    params = Params()
    sql = json_sql("postgresql", params)
    columns = _columns(sql, meter, 0)
    values = {name: repr(value) for name, value in params.values.items()}
    document = json.dumps([VERSION, columns, values], sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:40]


def value_fingerprint(meter: Meter) -> str:
    """A hash of the SQL that finds a unique_count meter's distinct values."""
    params = Params()
    sql = json_sql("postgresql", params)
    prop = meter.over_property or ""
    parts = ["distinct", sql.meter_test(meter), sql.raw(prop), sql.is_present(prop)]
    values = {name: repr(value) for name, value in params.values.items()}
    document = json.dumps([VERSION, parts, values], sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:40]


def wanted_tests(meters: Iterable[Meter]) -> dict[str, tuple[str, Meter]]:
    """Fingerprint -> ("counts" or "values", a meter with that test) for these meters."""
    wanted: dict[str, tuple[str, Meter]] = {}
    for meter in meters:
        wanted.setdefault(fingerprint(meter), ("counts", meter))
        if meter.aggregation == "unique_count":
            wanted.setdefault(value_fingerprint(meter), ("values", meter))
    return wanted


@dataclass(frozen=True)
class State:
    watermark: int
    last_seq: int
    fingerprints: frozenset[str]

    @property
    def current(self) -> bool:
        """Nothing was stored (or begun) since the roll-ups were last brought up to date."""
        return self.last_seq <= self.watermark


def state(conn: Connection) -> State | None:
    """The roll-ups' state, or None where they are not kept (SQLite; a schema made without
    the migration, which has no state row)."""
    if not maintained(conn.dialect.name):
        return None
    row = conn.exec_driver_sql(
        "SELECT s.watermark, CASE WHEN q.is_called THEN q.last_value ELSE 0 END "
        "FROM usage_rollup_state s, event_seq q WHERE s.id = 1").first()
    if row is None:
        return None
    held = frozenset(r[0] for r in conn.exec_driver_sql(
        "SELECT fingerprint FROM usage_rollup_meter"))
    return State(int(row[0]), int(row[1]), held)


ROLLUP_WORK_MEM = "256MB"   # a hash may use twice this (hash_mem_multiplier) before it spills
UPSERT = (
    "ON CONFLICT (customer_id, fingerprint, day) DO UPDATE SET "
    "matched = usage_rollup.matched + excluded.matched, "
    "present = usage_rollup.present + excluded.present, "
    "numbers = usage_rollup.numbers + excluded.numbers, "
    "total = COALESCE(usage_rollup.total + excluded.total, usage_rollup.total, excluded.total), "
    "high = GREATEST(usage_rollup.high, excluded.high), "
    "low = LEAST(usage_rollup.low, excluded.low)")


def _add(conn: Connection, tests: Mapping[str, Meter], above: int, upto: int) -> None:
    """Add the events with above < seq <= upto to the roll-ups of `tests`, in one
    statement: one GROUP BY customer and day, each test a set of FILTERed aggregates, then
    one row per test and group that matched anything."""
    params = Params()
    sql = json_sql("postgresql", params)
    columns: list[str] = []
    rows: list[str] = []
    for i, (print_, meter) in enumerate(sorted(tests.items())):
        columns += _columns(sql, meter, i)
        rows.append(f"({params.add(print_)}, g.m{i}, g.p{i}, g.n{i}, g.t{i}, g.h{i}, g.l{i})")
    names = ", ".join(params.add(n) for n in sorted({m.event_name for m in tests.values()}))
    low, high = params.add(above), params.add(upto)
    query = (
        "INSERT INTO usage_rollup (customer_id, fingerprint, day, matched, present, numbers, "
        "total, high, low) SELECT g.customer_id, v.f, g.day, v.m, v.p, v.n, v.t, v.h, v.l "
        f"FROM (SELECT e.customer_id, CAST(e.ts AS date) AS day, {', '.join(columns)} "
        f"FROM event e WHERE e.seq > {low} AND e.seq <= {high} AND e.event_name IN ({names}) "
        f"GROUP BY 1, 2) g CROSS JOIN LATERAL (VALUES {', '.join(rows)}) "
        f"AS v(f, m, p, n, t, h, l) WHERE v.m > 0 {UPSERT}")
    conn.execute(text(query), params.values)


def _add_values(conn: Connection, print_: str, meter: Meter, above: int, upto: int) -> None:
    """Add the distinct values of a unique_count meter's property in the events with
    above < seq <= upto, per customer and day (a value seen again adds nothing). The
    distinct rows are found by hashing and inserted in key order (their few rows sorted
    in memory): inserting them in hash order into the (jsonb) key cost 1.9 s at 1M
    events against 1.0 s."""
    params = Params()
    sql = json_sql("postgresql", params)
    prop = meter.over_property or ""
    query = (
        "WITH d AS MATERIALIZED (SELECT DISTINCT e.customer_id AS c, CAST(e.ts AS date) AS day, "
        f"{sql.raw(prop)} AS v FROM event e WHERE e.seq > {params.add(above)} "
        f"AND e.seq <= {params.add(upto)} AND {sql.meter_test(meter)} AND {sql.is_present(prop)}) "
        "INSERT INTO usage_rollup_value (customer_id, fingerprint, day, value) "
        f"SELECT d.c, {params.add(print_)}, d.day, d.v FROM d ORDER BY 1, 3, 4 "
        "ON CONFLICT DO NOTHING")
    conn.execute(text(query), params.values)


@dataclass
class RollupReport:
    """What one `roll_up` did: the events it added, the tests it backfilled or dropped."""

    watermark: int = 0
    added_above: int = 0
    backfilled: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)


def settled_seq(conn: Connection) -> int:
    """The last seq the sequence has given, once every chunk storing events has ended:
    every event up to it is committed (or rolled back, a gap). Call it in a transaction
    of its own and end that at once: it holds the lock that stops chunks from starting."""
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK})")
    return int(conn.exec_driver_sql(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_seq").scalar_one())


def roll_up(conn: Connection, meters: Iterable[Meter], now: datetime, upto: int
            ) -> RollupReport | None:
    """Bring the roll-ups of these meters up to `upto` (from `settled_seq`, read in an
    earlier transaction), inside the caller's transaction. Roll-ups take turns on the
    state row (FOR UPDATE), so two never add the same events; ingests go on meanwhile
    (their events get a higher seq). Tests no meter uses any more are dropped; a test
    that fails to build is dropped and named in the report (its meters are then measured
    from raw events). Its planner settings (no JIT, no sorts, more `work_mem`) last until
    the caller's transaction ends."""
    if not maintained(conn.dialect.name):
        return None
    row = conn.exec_driver_sql(
        "SELECT watermark FROM usage_rollup_state WHERE id = 1 FOR UPDATE").first()
    found = state(conn)
    if row is None or found is None:
        return None
    found = State(int(row[0]), max(upto, int(row[0])), found.fingerprints)
    # No JIT: the planner, without statistics on events just stored, expects a million
    # groups and compiles each statement for longer than it saves (the counts' SELECT at
    # 1M events: 3.2-3.6 s with JIT, 2.5 s without). Expecting that many groups, it also
    # sorted every event's whole row on disk (107 MB at 1M) to group them; hashing them in
    # memory took the counts from 5.2 to 3.7 s (EXPLAIN ANALYZE; eleventh pass). A
    # larger table than the memory spills to disk in batches, as a sort would.
    conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql(f"SET LOCAL work_mem = '{ROLLUP_WORK_MEM}'")
    conn.exec_driver_sql("SET LOCAL enable_sort = off")
    wanted = wanted_tests(meters)
    report = RollupReport(watermark=found.last_seq, added_above=found.watermark)
    gone = sorted(found.fingerprints - wanted.keys())
    new = {f: m for f, (_, m) in wanted.items() if f not in found.fingerprints}
    failed: dict[str, str] = {}
    steps: list[tuple[dict[str, Meter], str, int]] = []
    for kind in ("counts", "values"):
        for held in (True, False):   # held: the events since the watermark; new: all
            group = {f: m for f, (k, m) in wanted.items()
                     if k == kind and (f in found.fingerprints) == held}
            above = found.watermark if held else 0
            if not group or above >= found.last_seq:
                continue
            if kind == "counts":
                steps.append((group, kind, above))
            else:
                steps += [({f: m}, kind, above) for f, m in group.items()]
    for group, kind, above in steps:
        try:
            with conn.begin_nested():
                if kind == "counts":
                    _add(conn, group, above, found.last_seq)
                else:
                    [(print_, meter)] = group.items()
                    _add_values(conn, print_, meter, above, found.last_seq)
        except Exception as exc:   # a value the database refuses: measure those raw
            failed.update({f: describe(exc) for f in group})
            log.warning("usage roll-ups dropped (metering reads raw events for them): %s",
                        describe(exc))
    drop = [*gone, *failed]
    if drop:
        for table in ("usage_rollup", "usage_rollup_value", "usage_rollup_meter"):
            conn.execute(text(f"DELETE FROM {table} WHERE fingerprint = ANY(:f)"),
                         {"f": drop})
    fresh = [(f, m) for f, m in new.items() if f not in failed]
    if fresh:
        conn.execute(text("INSERT INTO usage_rollup_meter (fingerprint, meter, definition, "
                          "rolled_at) VALUES (:f, :m, :d, :t)"),
                     [{"f": f, "m": m.key, "d": m.model_dump_json(), "t": now}
                      for f, m in fresh])
    conn.execute(text("UPDATE usage_rollup_state SET watermark = :w WHERE id = 1"),
                 {"w": found.last_seq})
    report.backfilled = tuple(f for f, _ in fresh)
    report.dropped = tuple(drop)
    report.failed = failed
    return report


# --- reading ----------------------------------------------------------------------------

def _midnight_at_or_after(moment: datetime) -> datetime:
    day = datetime.combine(moment.date(), time())
    return day if day == moment else day + timedelta(days=1)


@dataclass(frozen=True)
class Split:
    """A window's whole UTC days [first, last) and the partial days around them."""

    first: date
    last: date
    edges: tuple[tuple[datetime, datetime], ...]


def split(start: datetime, end: datetime) -> Split | None:
    """The whole days of [start, end) and its edges; None when it holds no whole day."""
    first = _midnight_at_or_after(start)
    last = datetime.combine(end.date(), time())
    if first >= last:
        return None
    edges = tuple((a, b) for a, b in ((start, first), (last, end)) if a < b)
    return Split(first.date(), last.date(), edges)


Whole = tuple[str, str, date, date]          # window key, customer, first day, end day
Edge = tuple[str, str, datetime, datetime]    # window key, customer, start, end


def whole_and_edges(windows: Iterable[Any]) -> tuple[list[Whole], list[Edge]]:
    """Each window's whole days, and the pieces read from raw events: its partial days,
    or all of it when it holds no whole day (windows: `aggregate.Window`s)."""
    whole: list[Whole] = []
    edges: list[Edge] = []
    for w in windows:
        days = split(w.start, w.end)
        if days is None:
            edges.append((w.key, w.customer_id, w.start, w.end))
            continue
        whole.append((w.key, w.customer_id, days.first, days.last))
        edges += [(w.key, w.customer_id, a, b) for a, b in days.edges]
    return whole, edges


def _windows(params: Params, rows: Sequence[Whole] | Sequence[Edge], bound: str) -> str:
    """A FROM item `w(k, c, s, e)`: window key, customer, start and end (`bound`: the SQL
    type of the bounds, date or timestamp), as typed arrays."""
    keys, customers, starts, ends = (list(c) for c in zip(*rows, strict=True))
    return (f"unnest(CAST({params.add(keys)} AS text[]), CAST({params.add(customers)} AS "
            f"text[]), CAST({params.add(starts)} AS {bound}[]), CAST({params.add(ends)} AS "
            f"{bound}[])) AS w(k, c, s, e)")


def read(conn: Connection, tests: Mapping[int, str],
         windows: Sequence[Whole]) -> dict[str, dict[int, tuple]]:
    """Per window key and meter index: (matched, present, numbers, total, high, low) summed
    over the window's whole days [first, last). `tests`: meter index -> fingerprint."""
    if not windows or not tests:
        return {}
    by_print: dict[str, list[int]] = {}
    for index, print_ in tests.items():
        by_print.setdefault(print_, []).append(index)
    params = Params()
    query = ("SELECT w.k, r.fingerprint, SUM(r.matched), SUM(r.present), SUM(r.numbers), "
             f"SUM(r.total), MAX(r.high), MIN(r.low) FROM {_windows(params, windows, 'date')} "
             "JOIN usage_rollup r ON r.customer_id = w.c AND r.day >= w.s AND r.day < w.e "
             f"AND r.fingerprint = ANY(CAST({params.add(sorted(by_print))} AS text[])) "
             "GROUP BY w.k, r.fingerprint")
    found: dict[str, dict[int, tuple]] = {}
    rows = conn.execute(text(query), params.values)
    for key, print_, *values in rows:
        for index in by_print[print_]:
            found.setdefault(key, {})[index] = tuple(values)
    return found


def distinct_counts(conn: Connection, meter: Meter, print_: str,
                    whole: Sequence[Whole], edges: Sequence[Edge]) -> dict[str, int]:
    """Per window key: how many distinct values of the meter's property its events hold,
    from the values of its whole days (`whole`: key, customer, first day, end day) and
    the raw events of its partial days (`edges`: key, customer, start, end; a key may
    have two), counted together."""
    params = Params()
    sql = json_sql("postgresql", params)
    prop = meter.over_property or ""
    parts = []
    if whole:
        parts.append(
            f"SELECT w.k, r.value AS v FROM {_windows(params, whole, 'date')} "
            f"JOIN usage_rollup_value r ON r.customer_id = w.c AND r.fingerprint = "
            f"{params.add(print_)} AND r.day >= w.s AND r.day < w.e")
    if edges:
        parts.append(
            f"SELECT w.k, {sql.raw(prop)} AS v FROM {_windows(params, edges, 'timestamp')} "
            f"JOIN event e ON e.customer_id = w.c AND e.ts >= w.s AND e.ts < w.e "
            f"WHERE {sql.meter_test(meter)} AND {sql.is_present(prop)}")
    if not parts:
        return {}
    query = (f"SELECT k, COUNT(DISTINCT v) FROM ({' UNION ALL '.join(parts)}) u GROUP BY k")
    return {key: int(count) for key, count in conn.execute(text(query), params.values)}


def merged(parts: Iterable[Mapping[str, Any]], meters: Sequence[Meter]) -> dict[str, Any]:
    """Rows of `aggregate._grouped_in_workers`' shape (n, p, c, q per meter index) added up
    over parts of one window: counts add, sums add, max and min take the larger/smaller."""
    out: dict[str, Any] = {}
    for part in parts:
        for name, value in part.items():
            if value is None or name == "window_key":
                continue
            if name not in out or out[name] is None:
                out[name] = value
            elif name[0] == "q":
                agg = meters[int(name[1:])].aggregation
                out[name] = (max(out[name], value) if agg == "max" else
                             min(out[name], value) if agg == "min" else out[name] + value)
            else:
                out[name] += value
    return out


def as_row(values: Mapping[int, tuple], meters: Sequence[Meter]) -> dict[str, Any]:
    """A roll-up read (`read`) as a row of `_grouped_in_workers`' shape."""
    row: dict[str, Any] = {}
    for i, (matched, present, numbers, total, high, low) in values.items():
        agg = meters[i].aggregation
        row[f"n{i}"] = int(matched)
        if agg == "count":
            continue
        row[f"p{i}"] = int(present)
        row[f"c{i}"] = int(numbers)
        if agg in ("sum", "avg", "max", "min"):
            row[f"q{i}"] = {"max": high, "min": low}.get(agg, total)
    return row
