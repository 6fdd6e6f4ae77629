"""Benchmark every stage of a billing run beside its baseline, in one process and run.

    python -m benchmarks.run --events 1000000 --customers 1000 [--db URL] [--out DIR]
    python -m benchmarks.run --month --events 10000000 --customers 10000 [--workers 2]

--db is `sqlite` (default: a new file in DIR) or a PostgreSQL URL, on whose server a fresh
database is created for the run and dropped after it. Writes DIR/report.json, report.md and
ratios.png. Times are not asserted anywhere; ratios measured in the same run are the result.
"""

from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import: an isolated home, no analytics, a patient start.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="billflow-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import argparse
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from benchmarks import stages
from benchmarks.measure import max_rss_mb
from benchmarks.report import report_document, write_reports
from benchmarks.synthetic import bench_catalog, write_events
from billing_core.db.engine import get_engine
from billing_core.db.migrate import upgrade
from billing_core.periods import BillingPeriod
from billing_core.services.catalog import apply_catalog
from billing_core.services.drafting import draft_period
from billing_core.services.unit_of_work import SqlUnitOfWork

PERIOD = BillingPeriod.parse("2026-10")
PARALLEL_INVOICES = 200


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def bench_database(db: str, out: Path) -> Iterator[str]:
    """A fresh, empty database URL for this run."""
    if db == "sqlite":
        path = out / "bench.db"
        for leftover in out.glob("bench.db*"):
            leftover.unlink()
        yield f"sqlite:///{path}"
        return
    url = make_url(db)
    if not url.drivername.startswith("postgresql"):
        raise SystemExit(f"--db must be 'sqlite' or a PostgreSQL URL, got {db!r}")
    name = f"billflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        get_engine(url.set(database=name).render_as_string(hide_password=False)).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def database_version(engine: Any) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return str(conn.execute(text("SHOW server_version")).scalar_one())
        return "SQLite " + str(conn.execute(text("SELECT sqlite_version()")).scalar_one())


def run(events: int, customers: int, db: str, out: Path, seed: int = 1,
        render_repeats: int = 20, parallel_invoices: int = PARALLEL_INVOICES,
        random_ids: bool = False) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    _log(f"generating {events:,} events for {customers:,} customers in {data}")
    generated = write_events(data, events, customers, PERIOD, seed, random_ids=random_ids)
    catalog = bench_catalog(customers, PERIOD)
    results: list[stages.StageResult] = []
    with bench_database(db, out) as url:
        os.environ["BILLING_DATABASE_URL"] = url
        os.environ["BILLING_NOW"] = stages.CLOCK.now().isoformat()
        engine = get_engine(url)
        upgrade(engine)
        apply_catalog(SqlUnitOfWork(engine), catalog, "benchmark catalog", stages.CLOCK)
        params: dict[str, Any] = {
            "events": events, "customers": customers, "seed": seed, "period": str(PERIOD),
            "render_repeats": render_repeats, "parallel_invoices": parallel_invoices,
            "event_ids": "random UUIDv4" if random_ids else "counting up",
            "database": f"{engine.dialect.name} ({database_version(engine)})",
            "machine": machine(),
            "generated": {"lines": generated.lines, "events": generated.events,
                          "duplicates": generated.duplicates, "bad": generated.bad,
                          "files": len(generated.paths), "by_kind": generated.by_kind},
        }
        _log("ingest: ours, then the bulk-load baseline")
        ingest, report = stages.ingest_stage(engine, generated.paths, generated.lines)
        results.append(ingest)
        accounting = report.total.as_dict()
        params["ingest_accounting"] = accounting
        params["accounting_matches"] = accounting == {
            "records": generated.lines, "ingested": generated.events,
            "duplicates": generated.duplicates, "rejected": generated.bad}
        _log("aggregate: ours, then one hand-written GROUP BY (best of 3 each)")
        aggregate, usage = stages.aggregate_stage(engine, catalog, PERIOD)
        results.append(aggregate)
        _log("peer: DuckDB straight from the files")
        results.append(stages.peer_stage(generated.paths, catalog, PERIOD, usage, ingest,
                                         aggregate, generated.lines))
        _log("end to end: the steps directly, then bill_cycle as a Prefect flow run")
        e2e = stages.end_to_end_stage(engine, PERIOD, out / "invoices", events)
        invoices = draft_period(SqlUnitOfWork(engine), stages.CLOCK, PERIOD,
                                store=False).documents  # the invoices just drafted
        _log("render: one invoice in steady state, then the minimal page")
        richest = max(invoices, key=lambda i: (len(i.lines), i.total))
        results.append(stages.render_stage(richest, out / "render", render_repeats))
        _log(f"render in parallel: {parallel_invoices} invoices with 1, then 2 processes")
        results.append(stages.render_parallel_stage(
            stages.copies(invoices, parallel_invoices), out / "render-parallel"))
        results.append(e2e)
        engine.dispose()
    document = report_document(results, max_rss_mb(), params)
    for path in write_reports(document, out):
        _log(f"wrote {path}")
    for folder in ("invoices", "render", "render-parallel"):
        shutil.rmtree(out / folder, ignore_errors=True)
    return document


def run_whole_month(events: int, customers: int, db: str, out: Path, seed: int,
                    workers: int, random_ids: bool = False) -> dict[str, Any]:
    """--month: generate, then ingest, draft, finalize and render the month."""
    from benchmarks.month import run_month, write_month

    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    _log(f"generating {events:,} events for {customers:,} customers in {data}")
    generated = write_events(data, events, customers, PERIOD, seed, random_ids=random_ids)
    catalog = bench_catalog(customers, PERIOD)
    with bench_database(db, out) as url:
        engine = get_engine(url)
        upgrade(engine)
        apply_catalog(SqlUnitOfWork(engine), catalog, "benchmark catalog", stages.CLOCK)
        params: dict[str, Any] = {
            "events": events, "customers": customers, "seed": seed, "period": str(PERIOD),
            "event_ids": "random UUIDv4" if random_ids else "counting up",
            "database": f"{engine.dialect.name} ({database_version(engine)})",
            "machine": machine(), "generated": {"lines": generated.lines,
                                                "events": generated.events}}
        month = run_month(engine, generated.paths, PERIOD, out / "invoices", workers, _log)
        params["accounting_matches"] = month["counts"]["accounting"] == {
            "records": generated.lines, "ingested": generated.events,
            "duplicates": generated.duplicates, "rejected": generated.bad}
        engine.dispose()
    document = {"params": params, "month": month}
    for path in write_month(document, out):
        _log(f"wrote {path}")
    shutil.rmtree(out / "invoices", ignore_errors=True)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Time each stage of a billing run beside its baseline, in one run.")
    parser.add_argument("--events", type=int, default=100_000,
                        help="distinct events to generate (plus ~1%% re-sends, ~0.1%% bad)")
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--db", default="sqlite",
                        help="'sqlite' (a new file in --out) or a PostgreSQL URL; a fresh "
                             "database is created on that server and dropped afterwards")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--render-repeats", type=int, default=20,
                        help="renders of one invoice timed in steady state")
    parser.add_argument("--parallel-invoices", type=int, default=PARALLEL_INVOICES,
                        help="invoices rendered with 1 and then 2 worker processes")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the generated JSONL files in OUT/data")
    parser.add_argument("--month", action="store_true",
                        help="instead of the stages: the whole month as operators run it "
                             "(ingest, draft, finalize, render every invoice), timed; "
                             "writes OUT/month.json and month.md")
    parser.add_argument("--workers", type=int, default=2,
                        help="render processes for --month")
    parser.add_argument("--random-ids", action="store_true",
                        help="random UUIDv4 event ids instead of ids counting up (each new "
                             "event then lands at a random place in the event id key)")
    args = parser.parse_args(argv)
    if args.month:
        if min(args.events, args.customers, args.workers) < 1:
            parser.error("--events, --customers and --workers must be at least 1")
        month = run_whole_month(args.events, args.customers, args.db, args.out, args.seed,
                                args.workers, args.random_ids)
        if not args.keep_data:
            shutil.rmtree(args.out / "data", ignore_errors=True)
        print((args.out / "month.md").read_text())
        return 0 if month["params"]["accounting_matches"] else 1
    if min(args.events, args.customers, args.render_repeats, args.parallel_invoices) < 1:
        parser.error("--events, --customers, --render-repeats and --parallel-invoices must "
                     "be at least 1")
    document = run(args.events, args.customers, args.db, args.out, args.seed,
                   args.render_repeats, args.parallel_invoices, args.random_ids)
    if not args.keep_data:
        shutil.rmtree(args.out / "data", ignore_errors=True)
    print((args.out / "report.md").read_text())
    return 0 if document["params"]["accounting_matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
