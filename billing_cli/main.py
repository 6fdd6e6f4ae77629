"""`billing`: apply the catalog, ingest events, inspect the quarantine, run billing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from billing_core.catalog import Catalog, CatalogError, load_catalog_file
from billing_core.db.engine import database_url, get_engine
from billing_core.db.migrate import ensure_schema, upgrade
from billing_core.periods import BillingPeriod, InvalidPeriod

app = typer.Typer(help="Billflow: usage-based batch billing. Database: BILLING_DATABASE_URL "
                       "(default sqlite:///billing.db in the working directory).",
                  no_args_is_help=True, add_completion=False)
catalog_app = typer.Typer(help="The pricing catalog (meters, products, customers, "
                               "subscriptions).", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rejected input records, kept with their reason.",
                             no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(db_app, name="db")


def _shown_url() -> str:
    try:
        return make_url(database_url()).render_as_string(hide_password=True)
    except ArgumentError:
        return database_url()


def _engine() -> Engine:
    """The database, migrated to the newest schema; a clear error if it cannot be opened."""
    try:
        engine = get_engine()
        ensure_schema(engine)
    except (ArgumentError, DBAPIError, ModuleNotFoundError) as exc:
        reason = getattr(exc, "orig", None) or exc
        _fail(f"cannot open the database {_shown_url()} (BILLING_DATABASE_URL): {reason}")
    return engine


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration."""
    upgrade(_engine())
    typer.echo(f"database schema is up to date: {_shown_url()}")


def _read_catalog(file: Path) -> Catalog:
    try:
        return load_catalog_file(file)
    except CatalogError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


@catalog_app.command("validate")
def catalog_validate(file: Path) -> None:
    """Check a catalog file without touching the database."""
    catalog = _read_catalog(file)
    typer.echo(f"{file}: valid ({len(catalog.meters)} meters, {len(catalog.products)} products, "
               f"{len(catalog.customers)} customers, {len(catalog.subscriptions)} subscriptions)")


@catalog_app.command("apply")
def catalog_apply(file: Path) -> None:
    """Validate FILE.yaml and upsert it into the database, all or nothing."""
    from billing_core.catalog_store import apply_catalog

    catalog = _read_catalog(file)  # validate before the database is even opened
    summary = apply_catalog(_engine(), catalog)
    typer.echo(f"applied {file}: {summary.meters} meters, {summary.products} products "
               f"({summary.charges} charges), {summary.customers} customers, "
               f"{summary.subscriptions} subscriptions")


@app.command("ingest")
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or folders")],
           as_json: Annotated[bool, typer.Option("--json", help="Print the accounting as "
                                                 "JSON")] = False) -> None:
    """Ingest event files (.jsonl/.ndjson[.gz], .json batch, .csv[.gz], .parquet).

    Every record ends as ingested, duplicate or rejected (kept in the quarantine with its
    reason). Exits 1 only if an input could not be read; what could be read is kept.
    """
    from billing_core.ingest.service import ingest_paths

    report = ingest_paths(_engine(), list(paths))
    total = report.total
    if as_json:
        typer.echo(json.dumps(total.as_dict()))
    else:
        for f in report.files:
            a = f.accounting
            typer.echo(f"{f.path}: {a.records} records: {a.ingested} ingested, "
                       f"{a.duplicates} duplicates, {a.rejected} rejected")
        typer.echo(f"total: {total.records} records: {total.ingested} ingested, "
                   f"{total.duplicates} duplicates, {total.rejected} rejected")
        for reason, count in sorted(total.reasons.items()):
            typer.echo(f"  rejected {reason}: {count}")
        if total.rejected:
            typer.echo("see `billing quarantine list` for the rejected records")
    for error in report.errors:
        typer.echo(f"error: {error}", err=True)
    if report.errors:
        raise typer.Exit(1)


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include replayed records")] = False,
    limit: Annotated[int, typer.Option(help="At most this many (0: no limit)")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show rejected records: file, place, reason and raw text."""
    from billing_core.ingest.service import list_quarantine

    rows = list_quarantine(_engine(), status=None if all_ else "pending", limit=limit or None,
                           reason=reason)
    if as_json:
        typer.echo(json.dumps([{"id": r.id, "source": r.source, "location": r.location,
                                "reason": r.reason, "detail": r.detail, "status": r.status,
                                "attempts": r.attempts, "raw": r.raw} for r in rows], indent=1))
        return
    if not rows:
        typer.echo("quarantine is empty" if not all_ else "no quarantined records")
    for r in rows:
        raw = r.raw if len(r.raw) <= 160 else r.raw[:157] + "..."
        typer.echo(f"#{r.id} [{r.status}] {r.source}:{r.location}: {r.reason}: {r.detail}\n"
                   f"    {raw}")


@quarantine_app.command("replay")
def quarantine_replay(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Try every pending quarantined record again (e.g. after adding a customer)."""
    from billing_core.ingest.service import replay_quarantine

    result = replay_quarantine(_engine())
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    typer.echo(f"replayed {result.records} records: {result.ingested} ingested, "
               f"{result.duplicates} duplicates, {result.rejected} still rejected")
    for reason, count in sorted(result.reasons.items()):
        typer.echo(f"  still rejected {reason}: {count}")


@app.command("run")
def run(
    period: Annotated[str, typer.Option(help="Billing month, YYYY-MM")],
    customer: Annotated[list[str] | None, typer.Option(help="Only this customer "
                                                       "(repeatable)")] = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("invoices"),
    runner: Annotated[str | None, typer.Option(
        help="Where invoices render: in-process, processes or dask "
             "(default: BILLING_RUNNER, else in-process)")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes in the local pool (default: BILLING_WORKERS, else CPU count)")] = None,
    dask_address: Annotated[str | None, typer.Option(
        help="Dask scheduler address for --runner dask (default: BILLING_DASK_ADDRESS)")
    ] = None,
) -> None:
    """Bill a month as a Prefect flow run: DIR/<period>/<invoice>.html, .pdf, .json."""
    try:
        BillingPeriod.parse(period)
    except InvalidPeriod as exc:
        _fail(str(exc))
    from flows.render_runner import RunnerSettingError, resolve_plan

    try:
        resolve_plan(runner, workers, dask_address)
    except RunnerSettingError as exc:
        _fail(str(exc))
    from billing_core.catalog_store import load_catalog

    try:
        catalog = load_catalog(_engine())
    except LookupError as exc:
        _fail(str(exc))
    known = {c.id for c in catalog.customers}
    unknown = sorted(set(customer or []) - known)
    if unknown:
        _fail(f"unknown customer(s): {', '.join(unknown)}")
    from flows.billing import bill_cycle

    try:
        result = bill_cycle(period=period, customers=customer or None, out_dir=str(out),
                            runner=runner, workers=workers, dask_address=dask_address)
    except Exception as exc:
        _fail(f"billing run for {period} failed: {type(exc).__name__}: {exc} "
              f"(recorded in the run history: `billing runs`)")
    typer.echo(f"billed {result['period']}: {result['invoices']} invoice(s) "
               f"({result['created']} new, {result['updated']} revised, "
               f"{result['unchanged']} unchanged), total {result['total']} {result['currency']}")
    typer.echo(f"invoices are in {result['out_dir']}/")


@app.command("runs")
def runs(limit: int = 20) -> None:
    """Billing run history, newest first."""
    from billing_core.runs import list_runs

    for r in list_runs(_engine(), limit):
        total = f"{r.total} {r.currency}" if r.total is not None else "-"
        typer.echo(f"#{r.id} {r.period} {r.status:9} started {r.started_at:%Y-%m-%d %H:%M:%S} "
                   f"UTC: {r.invoices_created} new, {r.invoices_updated} revised, "
                   f"{r.invoices_unchanged} unchanged invoices, total {total}, "
                   f"flow run {r.flow_run_id}" + (f"\n    error: {r.error}" if r.error else ""))


def main() -> None:  # pragma: no cover
    sys.exit(app())
