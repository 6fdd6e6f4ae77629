"""Flow: bill one cycle — measure usage, price and record invoices, render them."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import unmapped

from billing_core.billing import draft_invoices, grand_total, usage_rows
from billing_core.catalog import Catalog
from billing_core.catalog_store import load_catalog
from billing_core.invoice import Invoice
from billing_core.invoice_store import RecordedInvoice, record_invoices
from billing_core.metering import PeriodUsage, measure_period
from billing_core.periods import BillingPeriod
from billing_core.render.batch import render_batch, render_in_processes, split_batches
from billing_core.runs import finish_run, start_run
from flows.common import (
    DB_RETRIES,
    DB_RETRY_DELAYS,
    NEVER_CACHE,
    Period,
    engine,
    retry_on_transient_db_error,
)
from flows.render_runner import RenderPlan, Runner, resolve_plan

DB_TASK = {"retries": DB_RETRIES, "retry_delay_seconds": DB_RETRY_DELAYS,
           "retry_condition_fn": retry_on_transient_db_error, **NEVER_CACHE}


@task(name="aggregate-usage", **DB_TASK)
def aggregate_usage(period: str, customers: list[str] | None) -> tuple[Catalog, PeriodUsage]:
    """Every active subscription's usage per meter, aggregated in the database."""
    db = engine()
    catalog = load_catalog(db)
    return catalog, measure_period(db, catalog, BillingPeriod.parse(period), customers)


@task(name="price-invoices", **DB_TASK)
def price_invoices(catalog: Catalog, usage: PeriodUsage, run_id: int) -> list[RecordedInvoice]:
    """Price each subscription's usage and record its invoice (numbered once)."""
    return record_invoices(engine(), draft_invoices(catalog, usage), run_id)


@task(name="render-invoices", **NEVER_CACHE)
def render_locally(recorded: list[RecordedInvoice], out_dir: str, workers: int) -> int:
    """Write HTML, PDF and JSON for every invoice: in this process, or in batches over a
    local pool of `workers` processes."""
    invoices = [r.invoice for r in recorded]
    if workers <= 1:
        render_batch(invoices, out_dir)
    else:
        render_in_processes(invoices, out_dir, workers)
    return len(invoices)


@task(name="render-invoice-batch", **NEVER_CACHE)
def render_invoice_batch(invoices: list[Invoice], out_dir: str) -> list[str]:
    """One batch of invoices, rendered on a Dask worker with that worker's renderer."""
    return render_batch(invoices, out_dir)


def render_on_dask(recorded: list[RecordedInvoice], out_dir: str, plan: RenderPlan) -> int:
    """Batches as Prefect tasks on an existing Dask cluster (files land in `out_dir` as the
    workers see it: give them a shared folder)."""
    from prefect_dask import DaskTaskRunner

    batches = split_batches([r.invoice for r in recorded], plan.workers)
    with DaskTaskRunner(address=plan.dask_address) as runner:
        futures = runner.map(render_invoice_batch,
                             {"invoices": batches, "out_dir": unmapped(out_dir)})
        return sum(len(future.result()) for future in futures)


@flow(name="bill-cycle")
def bill_cycle(period: Period, customers: list[str] | None = None,
               out_dir: str = "invoices", runner: Runner | None = None,
               workers: int | None = None, dask_address: str | None = None) -> dict:
    """Bill one calendar month (UTC) for every active subscription, or only `customers`.
    Invoices render where `runner` says (default: BILLING_RUNNER, else in this process)."""
    logger = get_run_logger()
    plan = resolve_plan(runner, workers, dask_address)
    db = engine()
    run_id = start_run(db, period, customers, str(flow_run.get_id() or "") or None)
    try:
        catalog, usage = aggregate_usage(period, customers)
        for meter, why in usage.skipped_by_meter().items():
            logger.warning("meter %s: events not counted: %s missing the property, %s not a "
                           "number", meter, why["missing_property"], why["not_a_number"])
        recorded = price_invoices(catalog, usage, run_id)
        logger.info("rendering %s invoice(s) %s", len(recorded), plan.describe())
        if plan.runner == "dask":
            render_on_dask(recorded, out_dir, plan)
        else:
            render_locally(recorded, out_dir, plan.workers)
    except BaseException as exc:
        finish_run(db, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    counts = {s: sum(1 for r in recorded if r.status == s)
              for s in ("created", "updated", "unchanged")}
    total = grand_total(r.invoice for r in recorded)
    finish_run(db, run_id, "completed", subscriptions=len(usage.subscriptions),
               currency=catalog.currency, total=total, skipped=usage.skipped_by_meter(),
               **counts)
    create_table_artifact(table=usage_rows(recorded, usage),
                          key=f"usage-{period}",
                          description=f"Usage and charges per customer for {period}")
    logger.info("billed %s: %s invoice(s) (%s), total %s %s, files in %s", period,
                len(recorded), ", ".join(f"{k} {v}" for k, v in counts.items()), total,
                catalog.currency, Path(out_dir) / period)
    return {"period": period, "billing_run_id": run_id, "invoices": len(recorded), **counts,
            "currency": catalog.currency, "total": format(total, "f"),
            "out_dir": str(Path(out_dir) / period),
            "invoice_numbers": [r.invoice.invoice_number for r in recorded]}
