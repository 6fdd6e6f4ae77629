"""`billing`: the catalog, ingest, the quarantine, billing runs, invoices, usage."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from billing_cli.output import safe
from billing_core.catalog import Catalog, CatalogError, load_catalog_file
from billing_core.clock import Clock, InvalidClockSetting, default_clock, parse_moment
from billing_core.db.engine import database_url, get_engine
from billing_core.db.migrate import ensure_schema, upgrade
from billing_core.errors import describe
from billing_core.periods import BillingPeriod, InvalidPeriod
from billing_core.services.unit_of_work import SqlUnitOfWork

if TYPE_CHECKING:
    from flows.render_runner import Runner

app = typer.Typer(help="Billflow: usage-based batch billing. Database: BILLING_DATABASE_URL "
                       "(default sqlite:///billing.db in the working directory).",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
catalog_app = typer.Typer(help="The pricing catalog (meters, products, customers, "
                               "subscriptions, settings).", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rejected input records, kept with their reason.",
                             no_args_is_help=True)
invoices_app = typer.Typer(help="Invoices and credit notes: list, show, finalize, pay, "
                                "void, credit.", no_args_is_help=True)
outbox_app = typer.Typer(help="E-mails of issued documents: what was sent, what failed.",
                         no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(invoices_app, name="invoices")
app.add_typer(outbox_app, name="outbox")
app.add_typer(db_app, name="db")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
F = TypeVar("F", bound=Callable[..., Any])


class Failed(Exception):
    """A clear error for the user: printed as one line, exit code 1."""


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {safe(message)}", err=True)
    raise typer.Exit(code)


def _shown_url() -> str:
    try:
        return make_url(database_url()).render_as_string(hide_password=True)
    except ArgumentError:
        return database_url()


def handled(command: F) -> F:
    """Every expected failure becomes one line on stderr and exit code 1."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Failed as exc:
            _fail(str(exc))
        except (SQLAlchemyError, OSError) as exc:
            _fail(f"{describe(exc)} (database {_shown_url()})"
                  if isinstance(exc, SQLAlchemyError) else describe(exc))
        except (ValueError, LookupError, RuntimeError) as exc:
            _fail(str(exc) if type(exc).__module__.startswith(("billing_core", "flows"))
                  else describe(exc))
        except Exception as exc:
            if os.environ.get("BILLING_DEBUG"):
                raise
            _fail(f"internal error: {describe(exc)} (set BILLING_DEBUG=1 for the traceback, "
                  f"and please report it)")
    return wrapper  # type: ignore[return-value]


def _engine() -> Engine:
    """The database, migrated to the newest schema; a clear error if it cannot be opened."""
    try:
        engine = get_engine()
        ensure_schema(engine)
    except (ArgumentError, DBAPIError, ModuleNotFoundError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise Failed(f"cannot open the database {_shown_url()} (BILLING_DATABASE_URL): "
                     f"{reason}") from None
    return engine


def _uow() -> SqlUnitOfWork:
    return SqlUnitOfWork(_engine())


def _clock() -> Clock:
    try:
        return default_clock()
    except InvalidClockSetting as exc:
        raise Failed(f"BILLING_NOW: {exc}") from None


def _period(text: str) -> BillingPeriod:
    try:
        return BillingPeriod.parse(text)
    except InvalidPeriod as exc:
        raise Failed(str(exc)) from None


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Failed(f"{option} must be a date YYYY-MM-DD, got {text!r}") from None


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=1, default=str, ensure_ascii=False))


@contextmanager
def _flow_errors(what: str) -> Iterator[None]:
    """A failed flow run: its reason in one line, and where the history is."""
    try:
        yield
    except (typer.Exit, Failed):
        raise
    except Exception as exc:
        raise Failed(f"{what} failed: {describe(exc)} (recorded in the run history: "
                     f"`billing runs`)") from None


# --- database and catalog -------------------------------------------------------------

@db_app.command("upgrade")
@handled
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration."""
    upgrade(_engine())
    typer.echo(f"database schema is up to date: {_shown_url()}")


def _read_catalog(file: Path) -> Catalog:
    try:
        return load_catalog_file(file)
    except CatalogError as exc:
        raise Failed(str(exc)) from None


@catalog_app.command("validate")
@handled
def catalog_validate(file: Path) -> None:
    """Check a catalog file without touching the database."""
    catalog = _read_catalog(file)
    typer.echo(f"{file}: valid ({len(catalog.meters)} meters, {len(catalog.products)} products, "
               f"{len(catalog.customers)} customers, {len(catalog.subscriptions)} subscriptions)")


@catalog_app.command("apply")
@handled
def catalog_apply(
    file: Path,
    prune: Annotated[bool, typer.Option(help="Archive (never delete) meters, products, "
                                             "customers and subscriptions absent from the "
                                             "file")] = False,
) -> None:
    """Validate FILE.yaml and upsert it over the catalog in force, all or nothing."""
    from billing_core.services.catalog import apply_catalog

    catalog = _read_catalog(file)  # validate before the database is even opened
    try:
        summary = apply_catalog(_uow(), catalog, str(file.resolve()), _clock(), prune)
    except CatalogError as exc:
        raise Failed(str(exc)) from None
    archived = ", ".join(f"{n} {k}" for k, n in summary.archived.items() if n)
    typer.echo(f"applied {file.resolve()}: {summary.meters} meters, {summary.products} "
               f"products ({summary.charges} charges), {summary.customers} customers, "
               f"{summary.subscriptions} subscriptions"
               + ("" if summary.changed else " (nothing changed)")
               + (f"; archived: {archived}" if archived else ""))


# --- ingest and quarantine ------------------------------------------------------------

@contextmanager
def _ingest_progress() -> Iterator[Callable[[str, Any], None]]:
    """A live line on a terminal (records, rate, rejected so far); on anything else a
    plain line on stderr every 10 seconds."""
    from billing_core.ingest.progress import IngestProgress, LoggedProgress

    if not sys.stderr.isatty():
        yield LoggedProgress(lambda line: typer.echo(line, err=True))
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    totals = IngestProgress()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("ingest: starting")

        def update(path: str, accounting: Any) -> None:
            totals(path, accounting)
            bar.update(task, description=safe(totals.line()))
        yield update


@contextmanager
def _render_progress() -> Iterator[None]:
    """On a terminal, a bar of the documents rendered so far by the flow run in this
    process; elsewhere the flow's own log lines ("rendered X of N documents") suffice."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from billing_core.render.batch import watching_renders

    with Progress("rendering documents", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("render", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
        with watching_renders(update):
            yield


@app.command("ingest")
@handled
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or folders")],
           as_json: Annotated[bool, typer.Option("--json", help="Print the accounting as "
                                                 "JSON")] = False) -> None:
    """Ingest event files (.jsonl/.ndjson[.gz], .json batch, .csv[.gz], .parquet).

    Every record ends as ingested, duplicate or rejected (kept in the quarantine with its
    reason). Exits 1 if an input could not be read; what could be read is kept.
    """
    from billing_core.services.ingest import ingest_paths

    with _ingest_progress() as progress:
        report = ingest_paths(_uow(), list(paths), _clock(), progress=progress)
    total = report.total
    if as_json:
        typer.echo(json.dumps(total.as_dict()))
    else:
        for f in report.files:
            a = f.accounting
            typer.echo(safe(f"{f.path}: {a.records} records: {a.ingested} ingested, "
                            f"{a.duplicates} duplicates, {a.rejected} rejected"))
        typer.echo(f"total: {total.records} records: {total.ingested} ingested, "
                   f"{total.duplicates} duplicates, {total.rejected} rejected")
        for reason, count in sorted(total.reasons.items()):
            typer.echo(f"  rejected {reason}: {count}")
        if total.rejected:
            typer.echo("see `billing quarantine list` for the rejected records")
    for note in report.notes:
        typer.echo(f"note: {safe(note)}", err=True)
    for alert in report.alerts:
        typer.echo(f"alert: {safe(alert.customer_id)}: {safe(alert.message)}", err=True)
    for error in report.errors:
        typer.echo(f"error: {safe(error)}", err=True)
    if report.errors:
        raise typer.Exit(1)


@quarantine_app.command("list")
@handled
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include replayed records")] = False,
    limit: Annotated[int, typer.Option(help="At most this many (0: no limit)")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show rejected records: file, place, reason and raw text (control characters are
    shown escaped)."""
    from billing_core.services.ingest import list_quarantine

    rows = list_quarantine(_uow(), status=None if all_ else "pending", limit=limit or None,
                           reason=reason)
    if as_json:
        _echo_json([{"id": r.id, "source": r.source, "location": r.location,
                     "reason": r.reason, "detail": r.detail, "status": r.status,
                     "attempts": r.attempts, "raw": r.raw} for r in rows])
        return
    if not rows:
        typer.echo("quarantine is empty" if not all_ else "no quarantined records")
    for r in rows:
        raw = r.raw if len(r.raw) <= 160 else r.raw[:157] + "..."
        typer.echo(f"#{r.id} [{r.status}] {safe(r.source)}:{r.location}: {r.reason}: "
                   f"{safe(r.detail, newlines=False)}\n    {safe(raw, newlines=False)}")


@quarantine_app.command("replay")
@handled
def quarantine_replay(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Try every pending quarantined record again (e.g. after adding a customer)."""
    from billing_core.services.ingest import replay_quarantine

    result = replay_quarantine(_uow(), _clock())
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    typer.echo(f"replayed {result.records} records: {result.ingested} ingested, "
               f"{result.duplicates} duplicates, {result.rejected} still rejected")
    for reason, count in sorted(result.reasons.items()):
        typer.echo(f"  still rejected {reason}: {count}")


# --- billing runs ---------------------------------------------------------------------

RunnerOption = Annotated[str | None, typer.Option(
    help="Where documents render: in-process, processes or dask "
         "(default: BILLING_RUNNER, else in-process)")]
WorkersOption = Annotated[int | None, typer.Option(
    help="Processes in the local pool (default: BILLING_WORKERS, else CPU count)")]
DaskOption = Annotated[str | None, typer.Option(
    help="Dask scheduler address for --runner dask (default: BILLING_DASK_ADDRESS)")]
OutOption = Annotated[Path, typer.Option(help="Folder for the documents")]


def _check_run(customer: list[str] | None, runner: str | None, workers: int | None,
               dask_address: str | None) -> None:
    from billing_core.services.catalog import load_catalog
    from flows.render_runner import RunnerSettingError, resolve_plan

    try:
        resolve_plan(runner, workers, dask_address)
    except RunnerSettingError as exc:
        raise Failed(str(exc)) from None
    catalog = load_catalog(_uow())
    unknown = sorted(set(customer or []) - {c.id for c in catalog.customers})
    if unknown:
        raise Failed(f"unknown customer(s): {', '.join(unknown)}")


@app.command("run")
@handled
def run(
    period: Annotated[str, typer.Option(help="Billing month, YYYY-MM")],
    customer: Annotated[list[str] | None, typer.Option(help="Only this customer "
                                                       "(repeatable)")] = None,
    out: OutOption = Path("invoices"),
    runner: RunnerOption = None, workers: WorkersOption = None, dask_address: DaskOption = None,
) -> None:
    """Draft a month's invoices as a Prefect flow run (no numbers yet):
    DIR/<period>/drafts/<reference>.pdf (.html, .json)."""
    _period(period)
    _check_run(customer, runner, workers, dask_address)
    from flows.billing import bill_cycle

    with _flow_errors(f"billing run for {period}"), _render_progress():
        result = bill_cycle(period=period, customers=customer or None, out_dir=str(out),
                            runner=cast("Runner | None", runner), workers=workers,
                            dask_address=dask_address)
    typer.echo(f"drafted {result['period']}: {result['drafts']} draft(s) ({result['created']} "
               f"new, {result['updated']} revised, {result['unchanged']} unchanged), "
               f"{result['issued']} already issued; totals "
               + (", ".join(f"{v} {c}" for c, v in result["totals"].items()) or "none"))
    for item in result["late_usage"]:
        typer.echo(safe(f"late usage {item['period']} {item['subscription']} {item['meter']}: "
                        f"{item['billed']} -> {item['current']} ({item['action']}"
                        + (f" on {item['target']}" if item["target"] else "") + ")"))
    typer.echo(f"drafts are in {result['out_dir']}/drafts/ (finalize with `billing invoices "
               f"finalize --period {result['period']}`)")


@app.command("runs")
@handled
def runs(limit: int = 20,
         period: Annotated[str | None, typer.Option(help="Only this month")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Billing run history, newest first (runs whose process died are shown crashed)."""
    from billing_core.services.runs import list_runs

    rows = list_runs(_uow(), _clock(), limit, period)
    if as_json:
        _echo_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("run", "kind", "period", "status", "started (UTC)", "drafts new/rev/same",
                  "finalized", "totals", "flow run", title="Billing runs")
    for r in rows:
        totals = ", ".join(f"{v} {c}" for c, v in (r.totals or {}).items()) or "-"
        table.add_row(f"#{r.id}", r.kind, r.period, r.status,
                      f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                      f"{r.invoices_created}/{r.invoices_updated}/{r.invoices_unchanged}",
                      str(r.invoices_finalized), totals, r.flow_run_id or "-")
    console.print(table)
    for r in rows:
        if r.error:
            typer.echo(safe(f"#{r.id}: {r.error}"))


# --- invoices -------------------------------------------------------------------------

def _money(value: Any, currency: str) -> str:
    from billing_core.render.html import format_money

    return format_money(value, currency)


@invoices_app.command("list")
@handled
def invoices_list(
    period: Annotated[str | None, typer.Option(help="Billing month, YYYY-MM")] = None,
    status: Annotated[str | None, typer.Option(
        help="draft, finalized, overdue, paid, void or issued (credit notes)")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer id")] = None,
    kind: Annotated[str | None, typer.Option(help="invoice or credit_note")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (0: no limit)")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Invoices, drafts and credit notes, by period and number."""
    from billing_core.services.documents import STATUSES, list_documents

    if period:
        _period(period)
    if status and status not in STATUSES:
        raise Failed(f"--status must be one of {', '.join(STATUSES)}, got {status!r}")
    views = list_documents(_uow(), _clock(), period=period, status=status, customer=customer,
                           kind=kind, limit=limit or None)
    if as_json:
        _echo_json([{"reference": v.reference, "kind": v.row.kind, "status": v.status,
                     "period": v.row.period, "customer": v.row.customer_id,
                     "subscription": v.row.subscription_id, "currency": v.row.currency,
                     "total": format(v.row.total, "f"),
                     "amount_due": format(v.row.amount_due, "f"),
                     "issue_date": v.row.issue_date, "due_date": v.row.due_date,
                     "revision": v.row.revision} for v in views])
        return
    table = Table("number / reference", "kind", "status", "period", "customer", "total",
                  "issued", "due", title="Documents")
    for v in views:
        table.add_row(v.reference, v.row.kind.replace("_", " "), v.status, v.row.period,
                      safe(v.row.customer_id), _money(v.row.total, v.row.currency),
                      str(v.row.issue_date or "-"), str(v.row.due_date or "-"))
    console.print(table)


@invoices_app.command("show")
@handled
def invoices_show(number: str,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One document: its status, dates, lines and totals (NUMBER or draft reference)."""
    from billing_core.documents.model import to_json
    from billing_core.services.documents import show_document

    view = show_document(_uow(), _clock(), number)
    row, doc = view.row, view.document
    if as_json:
        _echo_json({"status": view.status, "document": to_json(doc),
                    "paid_date": row.paid_date, "payment_reference": row.payment_reference,
                    "void_reason": row.void_reason, "file_hashes": row.file_hashes,
                    "credit_notes": [n.number for n in view.credit_notes]})
        return
    title = f"{row.kind.replace('_', ' ')} {view.reference} ({view.status})"
    table = Table("#", "description", "quantity", "unit price", "amount", title=title)
    for i, line in enumerate(doc.lines, start=1):
        table.add_row(str(i), safe(line.description), format(line.quantity, "f"),
                      format(line.unit_price, "f"), _money(line.amount, doc.currency))
    console.print(table)
    typer.echo(safe(f"customer {doc.customer_id} ({doc.customer.name}), subscription "
                    f"{doc.subscription_id}, period {doc.period}"))
    for tax in doc.tax_summary():
        included = "included: " if doc.tax_mode == "inclusive" else ""
        typer.echo(safe(f"{included}{tax['name']} {format(tax['rate'], 'f')}% "
                        f"({tax['category']}) on {_money(tax['base'], doc.currency)}: "
                        f"{_money(tax['amount'], doc.currency)}"))
    typer.echo(f"total {_money(doc.total, doc.currency)}"
               + (f", issued {doc.issue_date}" if doc.issue_date else ", not issued")
               + (f", due {doc.due_date}" if doc.due_date else ""))
    if row.paid_date:
        typer.echo(f"paid on {row.paid_date}"
                   + (f" (reference {safe(row.payment_reference)})"
                      if row.payment_reference else ""))
    if row.void_reason:
        typer.echo(f"void: {safe(row.void_reason)}")
    for note in view.credit_notes:
        typer.echo(f"credited by {note.number}: {_money(note.total, note.currency)}")


@invoices_app.command("finalize")
@handled
def invoices_finalize(
    period: Annotated[str, typer.Option(help="Billing month, YYYY-MM")],
    customer: Annotated[list[str] | None, typer.Option(help="Only this customer "
                                                       "(repeatable)")] = None,
    force: Annotated[bool, typer.Option(help="Finalize although the month is open or "
                                             "inside its grace period")] = False,
    out: OutOption = Path("invoices"),
    runner: RunnerOption = None, workers: WorkersOption = None, dask_address: DaskOption = None,
) -> None:
    """Issue a month's invoices (a Prefect flow run): draft once more, then give each its
    legal number, issue and due dates; its files are written once and never change."""
    from billing_core.services.catalog import load_catalog
    from billing_core.services.finalizing import check_finalizable

    target = _period(period)
    _check_run(customer, runner, workers, dask_address)
    catalog = load_catalog(_uow())
    check_finalizable(target, _clock(), catalog, force)
    from flows.finalize import finalize_invoices

    with _flow_errors(f"finalizing {period}"), _render_progress():
        result = finalize_invoices(period=period, customers=customer or None, force=force,
                                   out_dir=str(out), runner=cast("Runner | None", runner),
                                   workers=workers, dask_address=dask_address)
    numbers = result["invoices"]
    typer.echo(f"finalized {result['period']}: {len(numbers)} invoice(s)"
               + (f" ({numbers[0]} to {numbers[-1]})" if numbers else "")
               + (f", {len(result['credit_notes'])} credit note(s)"
                  if result["credit_notes"] else "")
               + "; amount due "
               + (", ".join(f"{v} {c}" for c, v in result["totals"].items()) or "0"))
    typer.echo(f"documents are in {result['out_dir']}/")


def _render_now(document_ids: list[int], out: Path) -> list[str]:
    from billing_core.render.batch import render_batch
    from billing_core.services.rendering import render_documents

    report = render_documents(_uow(), _clock(), out, render_batch, document_ids=document_ids)
    return report.paths


@invoices_app.command("pay")
@handled
def invoices_pay(
    number: str,
    date_: Annotated[str | None, typer.Option("--date", help="Payment date YYYY-MM-DD "
                                                             "(default today)")] = None,
    reference: Annotated[str | None, typer.Option(help="Payment reference")] = None,
) -> None:
    """Record that an issued invoice was paid (recording the same reference again is a
    no-op)."""
    from billing_core.services.documents import pay_invoice

    row, new = pay_invoice(_uow(), _clock(), number, _day(date_, "--date"), reference)
    typer.echo(f"invoice {row.number} " + ("paid" if new else "was already recorded as paid")
               + f" on {row.paid_date}"
               + (f" (reference {safe(row.payment_reference)})" if row.payment_reference
                  else ""))


@invoices_app.command("void")
@handled
def invoices_void(
    number: str,
    reason: Annotated[str, typer.Option(help="Why the invoice is voided")],
    out: OutOption = Path("invoices"),
) -> None:
    """Void an issued, unpaid invoice: a credit note cancels it (nothing is deleted)."""
    from billing_core.services.documents import void_invoice

    note_id, note = void_invoice(_uow(), _clock(), number, reason)
    paths = _render_now([note_id], out)
    typer.echo(f"invoice {number} is void; credit note {note} issued"
               + (f": {paths[0]}" if paths else ""))
    _queued_note(note)


@invoices_app.command("credit")
@handled
def invoices_credit(
    number: str,
    reason: Annotated[str, typer.Option(help="Why the credit is given")],
    line: Annotated[list[int] | None, typer.Option(help="Credit this line (1-based, "
                                                        "repeatable); default: all")] = None,
    out: OutOption = Path("invoices"),
) -> None:
    """Issue a credit note for an issued invoice, all of it or some lines."""
    from billing_core.services.documents import credit_invoice

    note_id, note = credit_invoice(_uow(), _clock(), number, reason, line or None)
    paths = _render_now([note_id], out)
    typer.echo(f"credit note {note} issued for {number}" + (f": {paths[0]}" if paths else ""))
    _queued_note(note)


def _queued_note(number: str) -> None:
    from billing_core.services.delivery import list_outbox

    if list_outbox(_uow(), reference=number):
        typer.echo("its e-mail is queued: `billing outbox send` sends it")


@invoices_app.command("render")
@handled
def invoices_render(
    period: Annotated[str | None, typer.Option(help="Only this month")] = None,
    out: OutOption = Path("invoices"),
) -> None:
    """Write any missing files of issued documents and changed drafts (issued documents
    render to the same bytes; a difference is reported)."""
    from billing_core.render.batch import LoggedRenderProgress, stream_in_steps
    from billing_core.services.rendering import render_documents

    if period:
        _period(period)
    with _uow().read() as uow:
        periods = [period] if period else sorted({r.period for r in uow.documents.listing()})
    progress = LoggedRenderProgress(lambda line: None if sys.stderr.isatty()
                                    else typer.echo(line, err=True))
    with _render_progress():
        report = render_documents(_uow(), _clock(), out,
                                  lambda jobs: stream_in_steps(jobs, progress), periods=periods)
    typer.echo(f"rendered {report.rendered} document(s); {report.skipped} up to date")
    for number in report.differing:
        typer.echo(f"warning: {number}: re-rendered files differ from the issued ones (the "
                   f"templates changed since it was issued)", err=True)


@invoices_app.command("send")
@handled
def invoices_send(number: str) -> None:
    """Send an issued document again, on purpose: a new message with its own Message-ID
    (recorded in the outbox), sent now when delivery is configured."""
    from billing_core.services.delivery import resend_document

    message = resend_document(_uow(), _clock(), number)
    typer.echo(f"queued message {message.sequence} of {number} ({message.message_id})")
    _send_now([number])


# --- outbox ---------------------------------------------------------------------------

def _send_now(references: list[str] | None) -> None:
    from billing_core.mail.settings import MailSettingError, mail_settings
    from billing_core.services.delivery import send_outbox

    try:
        settings = mail_settings()
    except MailSettingError as exc:
        raise Failed(str(exc)) from None
    if settings is None:
        typer.echo("delivery is not configured (BILLING_MAIL_URL): the message stays queued")
        return
    report = send_outbox(_uow(), _clock(), settings, references=references)
    counts = report.as_dict()
    typer.echo(f"{settings.describe()}: sent {counts['sent']}, failed {counts['failed']}, "
               f"waiting for a retry {counts['waiting']}, fate unknown {counts['unknown']}, "
               f"held {counts['held']}")
    for reference, error in report.failed:
        typer.echo(safe(f"failed {reference}: {error}"), err=True)
    for reference, error in report.unknown:
        typer.echo(safe(f"unknown {reference}: {error} (`billing outbox retry {reference}` "
                        f"sends it again)"), err=True)
    if report.failed or report.unknown:
        raise typer.Exit(1)


@outbox_app.command("list")
@handled
def outbox_list(
    status: Annotated[str | None, typer.Option(
        help="queued, sending (fate unknown), sent, failed or held")] = None,
    reference: Annotated[str | None, typer.Option(help="One document number")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Messages of issued documents, with their status, attempts and last error."""
    from billing_core.services.delivery import list_outbox

    rows = list_outbox(_uow(), status, reference)
    if as_json:
        _echo_json([{"reference": r.reference, "sequence": r.sequence, "status": r.status,
                     "to": r.recipients["to"], "cc": r.recipients.get("cc", []),
                     "subject": r.subject, "message_id": r.message_id,
                     "attempts": r.attempts, "last_error": r.last_error,
                     "sent_at": r.sent_at} for r in rows])
        return
    table = Table("document", "#", "status", "to", "attempts", "sent (UTC)", "last error",
                  title="Outbox")
    for r in rows:
        table.add_row(r.reference, str(r.sequence), r.status,
                      safe(", ".join(r.recipients["to"])), str(r.attempts),
                      f"{r.sent_at:%Y-%m-%d %H:%M}" if r.sent_at else "-",
                      safe(r.last_error or ""))
    console.print(table)


@outbox_app.command("retry")
@handled
def outbox_retry(number: str) -> None:
    """Queue again, on purpose, a document's message that failed, is held, or whose fate
    is unknown (`sending`), and send it now when delivery is configured."""
    from billing_core.services.delivery import retry_message

    message = retry_message(_uow(), _clock(), number)
    typer.echo(f"re-queued message {message.sequence} of {number}")
    _send_now([number])


@outbox_app.command("send")
@handled
def outbox_send() -> None:
    """Send every queued message that is due (each at most once)."""
    _send_now(None)


# --- preview and usage ----------------------------------------------------------------

def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_moment(text)
    except InvalidClockSetting:
        raise Failed(f"--as-of must be an ISO 8601 date or time, got {text!r}") from None


@app.command("preview")
@handled
def preview(
    customer: Annotated[str, typer.Option(help="Customer id")],
    as_of: Annotated[str | None, typer.Option(help="Usage up to this time (default now)")
                     ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the preview's files here")
                   ] = None,
) -> None:
    """The upcoming invoice: what the open month would bill today. Never numbered, never
    stored."""
    from billing_core.documents.model import to_json
    from billing_core.services.usage import preview_invoices

    docs = preview_invoices(_uow(), _clock(), customer, _moment(as_of))
    if as_json:
        _echo_json([to_json(d) for d in docs])
    else:
        if not docs:
            typer.echo(f"customer {customer} has no active subscription in that month")
        for doc in docs:
            table = Table("description", "quantity", "unit price", "amount",
                          title=f"Preview: {doc.product_name} ({doc.subscription_id}), "
                                f"{doc.period}")
            for line in doc.lines:
                table.add_row(safe(line.description), format(line.quantity, "f"),
                              format(line.unit_price, "f"), _money(line.amount, doc.currency))
            table.add_row("Total", "", "", _money(doc.total, doc.currency))
            console.print(table)
    if out is not None:
        from billing_core.documents.model import to_json as as_json_doc
        from billing_core.render.batch import process_renderer
        from billing_core.render.files import write_document_files

        for doc in docs:
            base = out.resolve() / doc.period / "preview" / f"PREVIEW-{doc.subscription_id}"
            write_document_files(json.dumps(as_json_doc(doc)), base, process_renderer())
            typer.echo(f"written {base}.pdf")


@app.command("usage")
@handled
def usage(
    customer: Annotated[str, typer.Option(help="Customer id")],
    from_: Annotated[str, typer.Option(
        "--from", help="First day, YYYY-MM-DD (in the customer's time zone)")],
    to: Annotated[str, typer.Option(help="Day after the last one, YYYY-MM-DD (exclusive)")],
    meter: Annotated[str | None, typer.Option(help="Only this meter")] = None,
    by: Annotated[str | None, typer.Option(help="'day' for one row per day")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Any meter's usage over any range, from the same metering as billing runs."""
    from billing_core.services.usage import usage_report

    if by not in (None, "day"):
        raise Failed(f"--by must be 'day', got {by!r}")
    start, end = _day(from_, "--from"), _day(to, "--to")
    assert start is not None and end is not None
    rows = usage_report(_uow(), customer, start, end, meter, by_day=by == "day")
    if as_json:
        _echo_json([{"meter": r.meter, "from": r.start, "to": r.end,
                     "quantity": format(r.quantity, "f"), "unit": r.unit, "events": r.events}
                    for r in rows])
        return
    table = Table("from", "to", "meter", "quantity", "events", title=f"Usage of {customer}")
    for r in rows:
        table.add_row(str(r.start), str(r.end), r.meter, f"{format(r.quantity, 'f')} {r.unit}",
                      str(r.events))
    console.print(table)


def main() -> None:  # pragma: no cover
    sys.exit(app())


# `billing credits` and `billing alerts` register themselves on `app`.
import billing_cli.credits  # noqa: E402,F401
