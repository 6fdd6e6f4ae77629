"""Each benchmark stage: our real code path, and beside it the baseline it is compared with,
measured in the same process and run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from benchmarks.measure import best_of, measured
from billing_core.catalog import Catalog
from billing_core.clock import FixedClock
from billing_core.documents.model import Document, to_json
from billing_core.ingest.store import SQLITE_CACHE_KIB, chunk_size_for
from billing_core.metering.json_sql import Params, json_sql
from billing_core.periods import BillingPeriod
from billing_core.render.batch import (
    RenderJob,
    old_objects_frozen,
    process_renderer,
    render_batch,
    render_in_processes,
    start_pool_server,
)
from billing_core.render.html import render_html
from billing_core.render.stack_room import with_stack_room
from billing_core.services.drafting import draft_period
from billing_core.services.ingest import IngestReport, ingest_paths
from billing_core.services.metering import PeriodUsage, measure_period
from billing_core.services.rendering import render_documents
from billing_core.services.unit_of_work import SqlUnitOfWork

# The synthetic month is October 2026; the benchmark runs as on November 10, 2026.
CLOCK = FixedClock(__import__("datetime").datetime(2026, 11, 10, 9, 0))

BULK_TABLE = "bench_bulk_event"


@dataclass
class StageResult:
    """`items` done in `seconds` by our path; `baseline_items` in `baseline_seconds`."""

    name: str
    seconds: float
    items: int
    baseline_seconds: float
    baseline_items: int
    unit: str
    ours: str
    baseline: str
    peak_rss_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds else float("inf")

    @property
    def baseline_per_second(self) -> float:
        return (self.baseline_items / self.baseline_seconds if self.baseline_seconds
                else float("inf"))

    @property
    def ratio(self) -> float:
        """Our throughput over the baseline's (1.0 = as fast as the baseline)."""
        return self.per_second / self.baseline_per_second


# --- ingest -----------------------------------------------------------------------------

def _json_objects(paths: list[Path]) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(file, line, object) for every line that parses as a JSON object; no other checks."""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield path, line, event


def _bulk_rows(paths: list[Path]) -> Iterator[tuple[Any, ...]]:
    """Every line that parses as a JSON object, as a row; no other checks."""
    for _, _, event in _json_objects(paths):
        yield (event.get("event_id"), event.get("customer_id"), event.get("event_name"),
               event.get("timestamp"), json.dumps(event.get("metadata")))


def bulk_load(engine: Engine, paths: list[Path]) -> int:
    """The baseline: rows into an unindexed table by the fastest plain route of the
    database (PostgreSQL COPY; SQLite executemany in one transaction)."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {BULK_TABLE}")
        conn.exec_driver_sql(f"CREATE TABLE {BULK_TABLE} (event_id TEXT, customer_id TEXT, "
                             f"event_name TEXT, ts TEXT, "
                             f"metadata {'JSONB' if postgres else 'TEXT'})")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if postgres:
            with cursor.copy(f"COPY {BULK_TABLE} FROM STDIN") as copy:
                for row in _bulk_rows(paths):
                    copy.write_row(row)
        else:   # one transaction (the driver would commit every row)
            cursor.execute("BEGIN")
            cursor.executemany(f"INSERT INTO {BULK_TABLE} VALUES (?, ?, ?, ?, ?)",
                               _bulk_rows(paths))
        raw.commit()
        cursor.execute(f"SELECT COUNT(*) FROM {BULK_TABLE}")
        loaded = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {BULK_TABLE}")
        raw.commit()
    finally:
        raw.close()
    return int(loaded)


FLOOR_TABLE = "bench_floor_event"


def _floor_rows(paths: list[Path], now: str) -> Iterator[tuple[Any, ...]]:
    """The rows our ingest stores (the event table's columns), from every line that parses
    as a JSON object with an id not seen before; no other checks."""
    import hashlib

    seen: set[str] = set()
    sources: dict[Path, str] = {}
    for path, line, event in _json_objects(paths):
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or event_id in seen:
            continue
        seen.add(event_id)
        if path not in sources:
            sources[path] = str(path.resolve())
        yield (event_id, event.get("customer_id"), event.get("event_name"),
               str(event.get("timestamp", now)).replace("T", " ").rstrip("Z"),
               json.dumps(event.get("metadata")), hashlib.md5(line.encode()).hexdigest(),
               now, sources[path])


def _floor_table(engine: Engine) -> None:
    """An empty copy of the event table with the same columns, indexes and unique key."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TABLE {FLOOR_TABLE} (LIKE event INCLUDING ALL)")
            # its own sequence: numbers taken from the events' would leave them pending
            # (not in the roll-ups) and send the aggregate stage to raw events
            conn.exec_driver_sql(f"CREATE SEQUENCE {FLOOR_TABLE}_seq OWNED BY "
                                 f"{FLOOR_TABLE}.seq")
            conn.exec_driver_sql(f"ALTER TABLE {FLOOR_TABLE} ALTER COLUMN seq SET DEFAULT "
                                 f"nextval('{FLOOR_TABLE}_seq')")
            return
        for (sql,) in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'event' AND sql IS NOT NULL "
                "ORDER BY type DESC").all():
            conn.exec_driver_sql(sql.replace('"event"', FLOOR_TABLE)
                                 .replace("TABLE event ", f"TABLE {FLOOR_TABLE} ")
                                 .replace(" ON event ", f" ON {FLOOR_TABLE} ")
                                 .replace("INDEX ix_event", "INDEX ix_floor_event")
                                 )


def same_schema_load(engine: Engine, paths: list[Path]) -> int:
    """The floor: the rows our ingest stores, into a table with the event table's indexes
    and unique key, by the database's fastest route (PostgreSQL COPY; SQLite one
    executemany per chunk, a transaction each, with the same chunk size and page cache as
    our ingest)."""
    from itertools import islice

    _floor_table(engine)
    now = CLOCK.now().isoformat(sep=" ")
    raw = engine.raw_connection()
    chunk = chunk_size_for(engine.dialect.name)
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        rows = _floor_rows(paths, now)
        columns = ("event_id, customer_id, event_name, ts, metadata, payload_hash, "
                   "ingested_at, source")
        while batch := list(islice(rows, chunk)):
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {FLOOR_TABLE} ({columns}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
            else:   # one transaction per chunk (the driver would commit every row)
                cursor.execute("BEGIN")
                cursor.executemany(f"INSERT INTO {FLOOR_TABLE} ({columns}) VALUES "
                                   f"(?, ?, ?, ?, ?, ?, ?, ?)", batch)
            raw.commit()
        cursor.execute(f"SELECT COUNT(*) FROM {FLOOR_TABLE}")
        loaded = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {FLOOR_TABLE}")
        raw.commit()
    finally:
        raw.close()
    return int(loaded)


def ingest_stage(engine: Engine, paths: list[Path], lines: int) -> tuple[StageResult,
                                                                          IngestReport]:
    for path in paths:  # both sides read from the page cache
        path.read_bytes()
    with measured() as ours:
        report = ingest_paths(SqlUnitOfWork(engine), list(paths), CLOCK)
    with measured() as floor:
        stored = same_schema_load(engine, paths)
    with measured() as base:
        loaded = bulk_load(engine, paths)
    route = "COPY" if engine.dialect.name == "postgresql" else "executemany"
    return StageResult(
        "ingest", ours.seconds, lines, floor.seconds, lines, "records",
        "ingest_paths: parse, validate, deduplicate, store, quarantine, account",
        f"{route} per {chunk_size_for(engine.dialect.name):,}-row chunk of the same rows "
        f"into a copy of the event table "
        f"(same indexes and unique key), no checks ({stored} rows)",
        peak_rss_mb=ours.peak_rss_mb,
        extra={"baseline_peak_rss_mb": floor.peak_rss_mb,
               "unindexed_load_seconds": base.seconds,
               "unindexed_load_per_second": lines / base.seconds if base.seconds else None,
               "ratio_to_unindexed_load": (base.seconds / ours.seconds
                                           if ours.seconds else None),
               "unindexed_load": f"{route} of the parsed lines into an unindexed table "
                                 f"({loaded} rows)"}), report


# --- aggregate ---------------------------------------------------------------------------

def _period_bounds(engine: Engine, period: BillingPeriod) -> tuple[Params, str, str]:
    """Bound parameters for the cycle's start and end, in the database's timestamp form."""
    params = Params()
    sql = json_sql(engine.dialect.name, params)
    return params, params.add(sql.timestamp(period.start)), params.add(sql.timestamp(period.end))


def hand_group_by(engine: Engine, period: BillingPeriod) -> int:
    """The baseline: one GROUP BY customer and event name, with a count, a numeric sum and
    a numeric max, over the same events table and cycle."""
    params, start, end = _period_bounds(engine, period)
    if engine.dialect.name == "postgresql":
        tokens, users = "(metadata->>'tokens')::numeric", "(metadata->>'count')::numeric"
    else:
        tokens, users = "json_extract(metadata, '$.tokens')", "json_extract(metadata, '$.count')"
    query = (f"SELECT customer_id, event_name, COUNT(*), SUM({tokens}), MAX({users}) "
             f"FROM event WHERE ts >= {start} AND ts < {end} GROUP BY customer_id, event_name")
    with engine.connect() as conn:
        return len(conn.execute(text(query), params.values).all())


def events_in_period(engine: Engine, period: BillingPeriod) -> int:
    params, start, end = _period_bounds(engine, period)
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM event WHERE ts >= {start} "
                                     f"AND ts < {end}"), params.values).scalar_one())


def fresh_statistics(engine: Engine) -> None:
    """PostgreSQL: ANALYZE the events, as autovacuum does after a large load, so that
    both sides of the comparison are planned with statistics, not with whatever
    autovacuum happened to have done by then (without statistics the planner guessed
    2,083 rows for 1M events and sorted them for the hand GROUP BY)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE event")


def aggregate_stage(engine: Engine, catalog: Catalog, period: BillingPeriod,
                    repeats: int = 3) -> tuple[StageResult, PeriodUsage]:
    fresh_statistics(engine)
    events = events_in_period(engine, period)
    seconds, usage = best_of(repeats, lambda: measure_period(SqlUnitOfWork(engine), period,
                                                             None, catalog))
    base_seconds, _ = best_of(repeats, lambda: hand_group_by(engine, period))
    meters = len({k for u in usage.usage.values() for k in u})
    source = rollup_source(engine)
    return StageResult(
        "aggregate", seconds, events, base_seconds, events, "events",
        f"measure_period: {len(usage.subscriptions)} subscriptions x {meters} meters "
        f"(filters, exact sums, unique counts, last values; {source})",
        "one GROUP BY customer, event name with COUNT, SUM and MAX",
        extra={"repeats": repeats, "best_of": True, "usage_from": source}), usage


def rollup_source(engine: Engine) -> str:
    """Where measuring reads counts and sums from: the roll-ups the ingest kept up to
    date (PostgreSQL), or raw events."""
    from billing_core.metering import rollup

    with engine.connect() as conn:
        found = rollup.state(conn)
    if found is None:
        return "raw events"
    if not found.current:
        return "raw events: the roll-ups are behind"
    return f"roll-ups of {len(found.fingerprints)} meter tests, raw events for the rest"


# --- peer --------------------------------------------------------------------------------

PEER_SQL = """
WITH raw AS (
  SELECT * FROM read_json($files, format = 'newline_delimited', ignore_errors = true,
    columns = {event_id: 'VARCHAR', customer_id: 'VARCHAR', event_name: 'VARCHAR',
               timestamp: 'VARCHAR', metadata: 'JSON'})
), events AS (
  SELECT DISTINCT ON (event_id) event_id, customer_id, event_name,
         TRY_CAST(timestamp AS TIMESTAMPTZ) AS ts, metadata
  FROM raw
  WHERE event_id IS NOT NULL AND customer_id IN (SELECT id FROM customers)
)
SELECT customer_id,
  count(*) FILTER (WHERE event_name = 'api.call' AND metadata->>'method' = 'POST'
                   AND contains(metadata->>'endpoint', '/v1/')) AS api_calls,
  sum(CAST(metadata->>'tokens' AS DECIMAL(38, 6)))
      FILTER (WHERE event_name = 'llm.completion' AND metadata->>'model' = 'large')
      AS tokens_large,
  sum(CAST(metadata->>'tokens' AS DECIMAL(38, 6)))
      FILTER (WHERE event_name = 'llm.completion' AND metadata->>'model' = 'small')
      AS tokens_small,
  max(CAST(metadata->>'count' AS DECIMAL(38, 6)))
      FILTER (WHERE event_name = 'concurrent.users') AS peak_users,
  count(DISTINCT metadata->>'project') FILTER (WHERE event_name = 'api.call') AS projects,
  arg_max(CAST(metadata->>'gb' AS DECIMAL(38, 6)), ts)
      FILTER (WHERE event_name = 'storage.snapshot') AS storage_gb
FROM events
WHERE ts >= $start AND ts < $end
GROUP BY customer_id
"""


def duckdb_usage(paths: list[Path], catalog: Catalog,
                 period: BillingPeriod) -> dict[str, dict[str, Decimal]]:
    """What a data engineer would script instead: per-customer usage straight from the
    JSONL files (deduplicated, bad lines skipped), in DuckDB."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE customers (id VARCHAR)")
        con.executemany("INSERT INTO customers VALUES (?)", [[c.id] for c in catalog.customers])
        cursor = con.execute(PEER_SQL, {"files": [str(p) for p in paths],
                                        "start": f"{period.start.isoformat()}+00:00",
                                        "end": f"{period.end.isoformat()}+00:00"})
        columns = [d[0] for d in cursor.description]
        return {row[0]: {c: Decimal(row[i] if row[i] is not None else 0)
                         for i, c in enumerate(columns) if i}
                for row in cursor.fetchall()}
    finally:
        con.close()


def compare_with_peer(usage: PeriodUsage, peer: dict[str, dict[str, Decimal]]) -> list[str]:
    """Every (customer, meter) where our quantity differs from the peer's."""
    differences = []
    for subscription in usage.subscriptions:
        theirs = peer.get(subscription.customer, {})
        for meter, ours in usage.usage.get(subscription.id, {}).items():
            expected = theirs.get(meter, Decimal(0))
            if ours.quantity != expected:
                differences.append(f"{subscription.customer}/{meter}: ours {ours.quantity}, "
                                   f"DuckDB {expected}")
    return differences


def peer_stage(paths: list[Path], catalog: Catalog, period: BillingPeriod, usage: PeriodUsage,
               ingest: StageResult, aggregate: StageResult, lines: int) -> StageResult:
    import duckdb

    with measured() as peer:
        result = duckdb_usage(paths, catalog, period)
    differences = compare_with_peer(usage, result)
    # What the floors of the two stages reach against DuckDB: the same rows stored with no
    # checks into the event table's layout, plus the hand GROUP BY. No path that keeps
    # every event in this database can do better than this.
    floors = ingest.baseline_seconds + aggregate.baseline_seconds
    return StageResult(
        "peer", ingest.seconds + aggregate.seconds, lines, peer.seconds, lines, "records",
        "ingest + aggregate (the two stages above)",
        f"DuckDB {duckdb.__version__} read_json + DISTINCT ON + GROUP BY, from the files",
        extra={"agrees": not differences, "differences": differences[:20],
               "peer_peak_rss_mb": peer.peak_rss_mb, "floors_seconds": floors,
               "floors_ratio": peer.seconds / floors if floors else None})


# --- render ------------------------------------------------------------------------------

MINIMAL_PAGE = """<!doctype html><html><head><style>
@font-face { font-family: Inter; src: url(fonts/Inter-Regular.otf); }
body { font-family: Inter; }
</style></head><body><p>Invoice INV-000000-00000: total $0.00</p></body></html>"""


def minimal_pdf(out: Path, font_config: Any, fetcher: Any, base_url: str) -> None:
    from weasyprint import HTML

    HTML(string=MINIMAL_PAGE, base_url=base_url, url_fetcher=fetcher).write_pdf(
        out, font_config=font_config)


def render_stage(invoice: Document, out: Path, repeats: int) -> StageResult:
    from weasyprint.text.fonts import FontConfiguration

    renderer = process_renderer()
    font_config = FontConfiguration()
    base_url = str(renderer.templates_dir) + "/"
    job = RenderJob(0, json.dumps(to_json(invoice)), str(out / "ours" / "invoice"))
    for _ in range(3):  # steady state: fonts, CSS and caches warm on both sides
        render_batch([job])
        minimal_pdf(out / "minimal.pdf", font_config, renderer.fetcher, base_url)
    # The floor: bare WeasyPrint on the very same invoice HTML and stylesheet, in this
    # process (what a hand-written template loop would pay at least). The two sides take
    # turns, one invoice each, so a drift in the machine's speed falls on both alike.
    # Ours is what production does for each document: `render_batch` (the collector
    # leaves the objects older than the batch alone, and the renderer gets room on the
    # frame stack). The floor runs under the same two conditions, so neither side pays
    # for the rest of this process: without them a full collection walks the millions of
    # objects the earlier stages left (0.70-0.72 against 0.99-1.02 with a ballast of 3M
    # objects, eleventh pass) and each side's cost moves with this function's depth
    # (0.83 to 1.08 at extra depths of 0 to 30 frames, tenth pass).
    page = render_html(invoice, inline_css=False)
    ours_seconds = same_seconds = 0.0
    for _ in range(repeats):
        with measured() as ours:
            [done] = render_batch([job])
        with measured() as same, old_objects_frozen():
            with_stack_room(renderer.render, page)
        if done.error:
            raise RuntimeError(f"the benchmark invoice did not render: {done.error}")
        ours_seconds += ours.seconds
        same_seconds += same.seconds
    with measured() as base:
        for _ in range(repeats):
            minimal_pdf(out / "minimal.pdf", font_config, renderer.fetcher, base_url)
    return StageResult(
        "render", ours_seconds, repeats, same_seconds, repeats, "invoices",
        f"render_batch of one document: HTML + PDF + JSON of a {len(invoice.lines)}-line invoice",
        "bare WeasyPrint write_pdf of the same invoice HTML and stylesheet",
        extra={"repeats": repeats, "lines": len(invoice.lines),
               "same_page_weasyprint_seconds_per_invoice": same_seconds / repeats,
               "ours_seconds_per_invoice": ours_seconds / repeats,
               "minimal_page_seconds_per_invoice": base.seconds / repeats})


def _jobs(invoices: list[Document], folder: Path) -> list[RenderJob]:
    return [RenderJob(i, json.dumps(to_json(doc)), str(folder / f"invoice-{i:05d}"))
            for i, doc in enumerate(invoices)]


def render_parallel_stage(invoices: list[Document], out: Path) -> StageResult:
    from benchmarks.cpu import two_process_speedup

    ceiling = two_process_speedup()
    # The fork server the pools' workers come from starts once per process (and before
    # either side here): each side's pool start-up is its workers', as in a billing run
    # after the first.
    with measured() as server:
        start_pool_server()
    with measured() as one:
        render_in_processes(_jobs(invoices, out / "one"), workers=1)
    with measured() as two:
        render_in_processes(_jobs(invoices, out / "two"), workers=2)
    return StageResult(
        "render_parallel", two.seconds, len(invoices), one.seconds, len(invoices), "invoices",
        "render_in_processes with 2 worker processes (start-up included)",
        "the same with 1 worker process",
        extra={"ratio_is": "speed-up", "machine_two_process_speedup": ceiling,
               "pool_server_start_seconds": server.seconds})


def copies(invoices: list[Document], count: int) -> list[Document]:
    """`count` invoices: the real ones, repeated if there are too few."""
    return [invoices[i % len(invoices)] for i in range(count)]


# --- end to end --------------------------------------------------------------------------

def stages_directly(engine: Engine, period: BillingPeriod, out: Path) -> dict[str, float]:
    """bill_cycle's steps called directly, without Prefect: the sum the flow is held to."""
    timings: dict[str, float] = {}
    with measured() as step:
        result = draft_period(SqlUnitOfWork(engine), CLOCK, period)
    timings["draft"] = step.seconds
    with measured() as step:
        render_documents(SqlUnitOfWork(engine), CLOCK, out, render_batch,
                         periods=[str(period)])
    timings["render_all"] = step.seconds
    timings["invoices"] = result.created
    return timings


def forget_invoices(engine: Engine) -> None:
    """Back to the state before billing, so the flow does the same work again."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM billed_usage"))
        conn.execute(text("DELETE FROM document"))


def end_to_end_stage(engine: Engine, period: BillingPeriod, out: Path,
                     events: int) -> StageResult:
    """`bill_cycle` as a flow run against its steps called directly, twice each in the
    order direct, flow, flow, direct, means compared: both sides are mostly rendering on
    one core, whose speed drifts over minutes by more than the overhead measured, and
    this order cancels a steady drift."""
    from flows.billing import bill_cycle

    _warm_prefect()
    direct_runs: list[dict[str, float]] = []
    flow_runs: list[float] = []
    for turn, side in enumerate(("direct", "flow", "flow", "direct")):
        forget_invoices(engine)
        if side == "direct":
            direct_runs.append(stages_directly(engine, period, out / f"direct-{turn}"))
            continue
        with measured() as flow_run:
            result = bill_cycle(period=str(period), out_dir=str(out / f"flow-{turn}"),
                                runner="in-process")
        assert result["created"] == direct_runs[0]["invoices"], (result, direct_runs[0])
        flow_runs.append(flow_run.seconds)
    direct_seconds = [d["draft"] + d["render_all"] for d in direct_runs]
    total = sum(direct_seconds) / len(direct_seconds)
    flow_seconds = sum(flow_runs) / len(flow_runs)
    steps = {"draft": sum(d["draft"] for d in direct_runs) / len(direct_runs),
             "render_all": sum(d["render_all"] for d in direct_runs) / len(direct_runs),
             "invoices": direct_runs[0]["invoices"]}
    return StageResult(
        "end_to_end", flow_seconds, events, total, events, "events",
        f"bill_cycle as a Prefect flow run ({result['drafts']} drafts, in-process render; "
        f"mean of 2)",
        "the sum of its steps called directly: draft (measure, price, record) + render all "
        "(mean of 2; order direct, flow, flow, direct)",
        extra={"steps": steps, "overhead_seconds": flow_seconds - total,
               "overhead_share": (flow_seconds - total) / flow_seconds,
               "order": "direct, flow, flow, direct", "direct_seconds": direct_seconds,
               "flow_seconds": flow_runs})


def _warm_prefect() -> None:
    """Start Prefect's local server before timing (its start-up is not a billing cost)."""
    from prefect import flow

    @flow(name="benchmark-warm-up")
    def warm_up() -> int:
        return 1

    warm_up()
