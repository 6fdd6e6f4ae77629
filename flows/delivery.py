"""Flows and tasks that send documents: the `send-invoices` flow (one task for the whole
batch, never one per message) and the approval step of the finalize flow."""

from __future__ import annotations

import os
from collections import defaultdict
from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from billing_core.mail.settings import MailSettings, mail_settings
from billing_core.money import EXACT
from billing_core.services.delivery import DeliveryReport, approve_run, send_outbox
from billing_core.services.unit_of_work import SqlUnitOfWork
from flows.common import clock, db_task, unit_of_work


def delivery_settings() -> MailSettings | None:
    """BILLING_MAIL_URL / BILLING_SMTP_URL; the password from BILLING_SMTP_PASSWORD or the
    Prefect Secret block named by BILLING_SMTP_PASSWORD_BLOCK."""
    password = None
    block = os.environ.get("BILLING_SMTP_PASSWORD_BLOCK")
    if block:
        from prefect.blocks.system import Secret

        secret: Any = Secret.load(block)
        password = str(secret.get())
    return mail_settings(password=password)


@db_task("send-outbox")
def send_batch(references: list[str] | None = None) -> DeliveryReport:
    """Send every due message (one task for the batch; a failed send fails nothing else)."""
    settings = delivery_settings()
    if settings is None:
        return DeliveryReport()
    return send_outbox(unit_of_work(), clock(), settings, references=references)


def publish_delivery(report: DeliveryReport, key: str = "delivery") -> None:
    logger = get_run_logger()
    for reference, error in report.failed:
        logger.error("%s was not sent: %s", reference, error)
    for reference, error in report.unknown:
        logger.warning("%s may or may not have been delivered (%s): decide with `billing "
                       "outbox retry %s`", reference, error, reference)
    counts = report.as_dict()
    lines = ["| sent | failed | waiting for a retry | fate unknown | held |",
             "|---:|---:|---:|---:|---:|",
             f"| {counts['sent']} | {counts['failed']} | {counts['waiting']} | "
             f"{counts['unknown']} | {counts['held']} |"]
    if report.failed:
        lines += ["", "**Failed:**", *[f"- {r}: {e}" for r, e in report.failed[:50]]]
    if report.unknown:
        lines += ["", "**Fate unknown (never re-sent without you):**",
                  *[f"- {r}: {e}" for r, e in report.unknown[:50]]]
    create_markdown_artifact(markdown="\n".join(lines), key=key,
                             description="What became of the outbox's messages")
    logger.info("delivery: %s", counts)


@flow(name="send-invoices")
def send_invoices(references: list[str] | None = None) -> dict[str, Any]:
    """Send the queued e-mails of issued invoices and credit notes (each at most once).

    Args:
        references: Only these document numbers; leave empty for every queued message.
    """
    if delivery_settings() is None:
        raise RuntimeError("no delivery configured: set BILLING_MAIL_URL (smtp://, smtps:// "
                           "or file://)")
    report = send_batch(references)
    publish_delivery(report)
    return report.as_dict()


class Approval(RunInput):
    """The operator's decision on sending a finalized month's documents."""

    approve: bool = Field(description="Send the invoices and credit notes now")
    reason: str = Field(default="", description="Why (kept in the run's history)")


def approval_summary(uow: SqlUnitOfWork, run_id: int, period: str,
                     flag_above: Decimal | None) -> str:
    """What the operator approves: counts, totals per currency, the biggest changes
    against the previous month, the invoices above the flag amount."""
    from billing_core.periods import BillingPeriod

    with uow.read():
        held = uow.outbox.held_for_run(run_id)
        documents = uow.documents.by_ids([m.document_id for m in held if m.document_id])
        previous = str(BillingPeriod.parse(period).shift(-1))
        before = {d.subscription_id: d for d in uow.documents.listing(period=previous)
                  if d.kind == "invoice" and d.number}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    invoices = [d for d in documents if d.kind == "invoice"]
    for d in invoices:
        totals[d.currency] = EXACT.add(totals[d.currency], d.amount_due)
    changes = sorted(((d.amount_due - before[d.subscription_id].amount_due, d)
                      for d in invoices if d.subscription_id in before),
                     key=lambda pair: -abs(pair[0]))[:10]
    lines = [f"### Send {len(held)} document(s) for {period}?", "",
             f"- invoices: **{len(invoices)}**, credit notes: "
             f"**{len(documents) - len(invoices)}**",
             "- total due: **" + (", ".join(f"{format(v, 'f')} {c}"
                                            for c, v in sorted(totals.items())) or "0")
             + "**"]
    if changes:
        lines += ["", f"**Biggest changes against {previous}:**", "",
                  "| invoice | customer | before | now | change |", "|---|---|---:|---:|---:|"]
        lines += [f"| {d.number} | {d.customer_id} | "
                  f"{format(before[d.subscription_id].amount_due, 'f')} | "
                  f"{format(d.amount_due, 'f')} | {format(change, '+f')} {d.currency} |"
                  for change, d in changes]
    if flag_above is not None:
        flagged = [d for d in invoices if d.amount_due > flag_above]
        lines += ["", f"**Invoices above {format(flag_above, 'f')}:** {len(flagged)}", ""]
        lines += [f"- {d.number} ({d.customer_id}): {format(d.amount_due, 'f')} {d.currency}"
                  for d in flagged[:50]]
    lines += ["", "Resume the flow run to decide: approve sends them; a rejection leaves the "
                  "documents issued but unsent, with your reason in the history."]
    return "\n".join(lines)


def approve_and_send(run_id: int, period: str, flag_above: Decimal | None,
                     timeout_hours: int) -> dict[str, Any]:
    """Pause for the operator's decision, then send (approved) or keep held (rejected)."""
    logger = get_run_logger()
    create_markdown_artifact(markdown=approval_summary(unit_of_work(), run_id, period,
                                                       flag_above),
                             key=f"approval-{period}",
                             description=f"Documents of {period} waiting for approval")
    try:
        decision = pause_flow_run(wait_for_input=Approval, timeout=timeout_hours * 3600,
                                  poll_interval=2)
    except Exception as exc:  # a timeout: no decision is a rejection
        approve_run(unit_of_work(), clock(), run_id, False,
                    f"no decision within {timeout_hours} h ({type(exc).__name__})")
        logger.warning("no approval within %s h: nothing sent", timeout_hours)
        return {"approved": False, "reason": "timed out"}
    assert decision is not None
    count = approve_run(unit_of_work(), clock(), run_id, decision.approve, decision.reason)
    if not decision.approve:
        logger.warning("sending rejected (%s): %s message(s) stay held", decision.reason,
                       count)
        return {"approved": False, "reason": decision.reason}
    logger.info("approved: sending %s message(s)", count)
    report = send_batch(None)
    publish_delivery(report)
    return {"approved": True, "reason": decision.reason, **report.as_dict()}
