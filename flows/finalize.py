"""Flow: finalize a month — issue its invoices with legal numbers, render them once."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from billing_core.periods import BillingPeriod
from billing_core.services.catalog import load_catalog
from billing_core.services.finalizing import FinalizeResult, finalize_period
from billing_core.services.runs import billing_run
from flows.billing import SubscriptionsNotBilled, record, render
from flows.common import Period, clock, db_task, unit_of_work
from flows.delivery import approve_and_send, delivery_settings, publish_delivery, send_batch
from flows.render_runner import Runner, resolve_plan
from flows.reporting import log_draft, log_render, money_dict, publish_draft, publish_finalized


@db_task("finalize-invoices")
def finalize(period: str, customers: list[str] | None, force: bool,
             run_id: int) -> FinalizeResult:
    """Draft the month again, then number and freeze its drafts in one transaction."""
    return finalize_period(unit_of_work(), clock(), BillingPeriod.parse(period), customers,
                           force, run_id)


@flow(name="finalize-invoices")
def finalize_invoices(period: Period | None = None, customers: list[str] | None = None,
                      force: bool = False, out_dir: str = "invoices",
                      runner: Runner | None = None, workers: int | None = None,
                      dask_address: str | None = None) -> dict:
    """Finalize a month: draft it once more, then give each invoice its legal number,
    issue and due dates, and render it once (the files never change again).

    Args:
        period: Billing month to finalize, YYYY-MM. Empty means the last closed month.
        customers: Only these customer ids; leave empty for every customer.
        force: Finalize even though the month is still open or inside its grace period
            (late events then become adjustments on a later invoice).
        out_dir: Folder for the documents, on the machine that runs the flow; issued
            documents go to OUT_DIR/PERIOD/NUMBER.pdf (.html, .json).
        runner: Where documents render: in-process, processes or dask. Empty means the
            BILLING_RUNNER setting, else in-process.
        workers: Processes in the local pool (runner processes), or Dask workers to cut
            batches for. Empty means BILLING_WORKERS, else the CPU count.
        dask_address: Scheduler address of an existing Dask cluster for runner dask.
            Empty means BILLING_DASK_ADDRESS.
    """
    logger = get_run_logger()
    plan = resolve_plan(runner, workers, dask_address)
    target = str(BillingPeriod.parse(period)) if period else \
        str(BillingPeriod.last_closed(clock().now()))
    out = str(Path(out_dir).resolve())
    with billing_run(unit_of_work(), clock(), "finalize", target, customers,
                     str(flow_run.get_id() or "") or None) as run:
        result = finalize(target, customers, force, run.run_id)
        log_draft(result.draft)
        report = render(out, plan, sorted({target, *(i.period for i in result.draft.late)}))
        log_render(report)
        record(run, result.draft, report)
        run.values.update(invoices_finalized=len(result.invoices),
                          credit_notes=len(result.credit_notes),
                          totals=money_dict(result.totals))
    publish_draft(result.draft, report, out)
    publish_finalized(target, result.invoices, result.credit_notes, result.totals, report,
                      out)
    delivery = deliver(run.run_id, target, result.queued)
    logger.info("finalized %s: %s invoice(s), %s credit note(s), amount due %s; files in %s",
                target, len(result.invoices), len(result.credit_notes),
                money_dict(result.totals), Path(out) / target)
    if result.draft.failures:
        raise SubscriptionsNotBilled(
            f"{len(result.draft.failures)} subscription(s) could not be billed (the others "
            f"were finalized)")
    return {"period": target, "billing_run_id": run.run_id, "invoices": result.invoices,
            "credit_notes": result.credit_notes, "totals": money_dict(result.totals),
            "rendered": report.rendered, "out_dir": str(Path(out) / target),
            "queued": result.queued, "delivery": delivery}


def deliver(run_id: int, period: str, queued: int) -> dict | None:
    """After the run (its lock released): ask for approval when the catalog requires it,
    then send when delivery is configured."""
    logger = get_run_logger()
    if not queued:
        return None
    settings = load_catalog(unit_of_work()).settings
    if settings.require_approval:
        return approve_and_send(run_id, period, settings.approval_flag_above,
                                settings.approval_timeout_hours)
    if delivery_settings() is None:
        logger.info("%s message(s) queued; set BILLING_MAIL_URL and run send-invoices (or "
                    "`billing outbox send`) to send them", queued)
        return None
    report = send_batch(None)
    publish_delivery(report)
    return report.as_dict()
