"""Flow: draft one month's invoices — measure usage, price, record drafts, render them."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from billing_core.periods import BillingPeriod
from billing_core.render.batch import LoggedRenderProgress
from billing_core.services.drafting import DraftResult, draft_period
from billing_core.services.rendering import RenderReport, render_documents
from billing_core.services.runs import RunHandle, billing_run
from flows.common import Period, clock, db_task, plain_task, unit_of_work
from flows.render_runner import RenderPlan, Runner, resolve_plan
from flows.reporting import log_draft, log_render, money_dict, publish_draft


class SubscriptionsNotBilled(RuntimeError):
    """Some subscriptions could not be billed; the others were."""


@db_task("draft-invoices")
def draft_invoices(period: str, customers: list[str] | None, run_id: int) -> DraftResult:
    """Measure every active subscription's usage and create or update its draft invoice."""
    return draft_period(unit_of_work(), clock(), BillingPeriod.parse(period), customers,
                        run_id)


@plain_task("render-documents")
def render_local(out_dir: str, plan: RenderPlan, periods: list[str]) -> RenderReport:
    """Write the files of every document whose content changed or whose files are missing,
    in this process or a local pool of processes."""
    progress = LoggedRenderProgress(get_run_logger().info)
    return render_documents(unit_of_work(), clock(), Path(out_dir), plan.renderer(progress),
                            periods=periods)


def render(out_dir: str, plan: RenderPlan, periods: list[str]) -> RenderReport:
    """Render locally as one task, or on Dask as one task per batch."""
    if plan.runner == "dask":
        return render_documents(unit_of_work(), clock(), Path(out_dir), plan.renderer(),
                                periods=periods)
    return render_local(out_dir, plan, periods)


def record(run: RunHandle, result: DraftResult, report: RenderReport) -> None:
    result.failures.extend(report.failures)
    run.values.update(
        subscriptions=result.subscriptions, invoices_created=result.created,
        invoices_updated=result.updated, invoices_unchanged=result.unchanged,
        documents_rendered=report.rendered, totals=money_dict(result.totals),
        skipped=result.skipped, late_usage=result.late_report(),
        failures=result.failures or None)
    if len(result.totals) == 1:
        currency, total = next(iter(result.totals.items()))
        run.values.update(currency=currency, total=total)
    if result.failures:
        run.status = "partial"


@flow(name="bill-cycle")
def bill_cycle(period: Period, customers: list[str] | None = None,
               out_dir: str = "invoices", runner: Runner | None = None,
               workers: int | None = None, dask_address: str | None = None) -> dict:
    """Draft one month's invoices: measure usage, price it, and create or update a draft
    (no number yet) for every active subscription; late usage of finalized months is
    placed per the catalog's late_usage policy. Issued invoices are never changed.

    Args:
        period: Billing month to draft, YYYY-MM (e.g. 2026-10). It may still be open.
        customers: Only these customer ids; leave empty for every customer.
        out_dir: Folder for the documents, on the machine that runs the flow; drafts go to
            OUT_DIR/PERIOD/drafts/.
        runner: Where documents render: in-process, processes or dask. Empty means the
            BILLING_RUNNER setting, else in-process.
        workers: Processes in the local pool (runner processes), or Dask workers to cut
            batches for. Empty means BILLING_WORKERS, else the CPU count.
        dask_address: Scheduler address of an existing Dask cluster for runner dask, e.g.
            tcp://10.0.0.5:8786. Empty means BILLING_DASK_ADDRESS.
    """
    logger = get_run_logger()
    plan = resolve_plan(runner, workers, dask_address)
    target = BillingPeriod.parse(period)
    out = str(Path(out_dir).resolve())
    with billing_run(unit_of_work(), clock(), "draft", period, customers,
                     str(flow_run.get_id() or "") or None) as run:
        result = draft_invoices(period, customers, run.run_id)
        log_draft(result)
        logger.info("rendering %s", plan.describe())
        lookback = {result.period, *(item.period for item in result.late)}
        report = render(out, plan, sorted(lookback))
        log_render(report)
        record(run, result, report)
    publish_draft(result, report, out)
    logger.info("drafted %s: %s draft(s) (%s new, %s revised, %s unchanged), %s already "
                "issued, totals %s; files in %s", period, result.drafts, result.created,
                result.updated, result.unchanged, result.issued, money_dict(result.totals),
                Path(out) / period / "drafts")
    summary = {"period": str(target), "billing_run_id": run.run_id, "drafts": result.drafts,
               "created": result.created, "updated": result.updated,
               "unchanged": result.unchanged, "removed": result.removed,
               "issued": result.issued, "rendered": report.rendered,
               "totals": money_dict(result.totals),
               "late_usage": [item.as_dict() for item in result.late],
               "failures": result.failures, "out_dir": str(Path(out) / period)}
    if result.failures:
        raise SubscriptionsNotBilled(
            f"{len(result.failures)} subscription(s) could not be billed (the others were): "
            + "; ".join(f"{f['subscription']} ({f['customer']}): {f['reason']}"
                        for f in result.failures[:5]))
    return summary
