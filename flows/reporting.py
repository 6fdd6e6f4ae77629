"""Artifacts and log lines the flows publish: what a run did, in a person's words."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from billing_core.services.drafting import DraftResult
from billing_core.services.rendering import RenderReport


def totals_text(totals: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{format(v, 'f')} {c}" for c, v in sorted(totals.items())) or "0"


def log_draft(result: DraftResult) -> None:
    logger = get_run_logger()
    for meter, why in result.skipped.items():
        logger.warning("meter %s: events not counted: %s missing the property, %s not a "
                       "number", meter, why["missing_property"], why["not_a_number"])
    for item in result.late:
        logger.warning("late usage for %s, subscription %s, meter %s: billed %s, now %s "
                       "-> %s%s", item.period, item.subscription_id, item.meter, item.billed,
                       item.current, item.action, f" ({item.target})" if item.target else "")
    for older in result.older_late:
        logger.warning("%s event(s) for customer %s in %s arrived after the look-back; "
                       "reported, not billed", older["events"], older["customer"],
                       older["period"])
    for failure in result.failures:
        logger.error("subscription %s (customer %s, %s) was not billed: %s",
                     failure["subscription"], failure["customer"], failure["period"],
                     failure["reason"])


def log_render(report: RenderReport) -> None:
    logger = get_run_logger()
    logger.info("rendered %s document(s), %s needed no render", report.rendered,
                report.skipped)
    for failure in report.failures:
        logger.error("%s (customer %s, %s) %s", failure["document"], failure["customer"],
                     failure["period"], failure["reason"])
    for number in report.differing:
        logger.warning("re-rendered %s differs from its issued files (the templates changed "
                       "since it was issued); the recorded hashes are kept", number)


def publish_draft(result: DraftResult, report: RenderReport, out_dir: str) -> None:
    period = result.period
    create_table_artifact(table=result.usage_rows or [{"note": "no drafts"}],
                          key=f"usage-{period}",
                          description=f"Draft usage and charges per customer for {period}")
    lines = [f"### Drafts for {period}", "",
             "| | count |", "|---|---:|",
             f"| subscriptions active | {result.subscriptions} |",
             f"| drafts created | {result.created} |",
             f"| drafts revised | {result.updated} |",
             f"| drafts unchanged | {result.unchanged} |",
             f"| drafts removed | {result.removed} |",
             f"| already issued | {result.issued} |",
             f"| documents rendered | {report.rendered} |",
             f"| failed subscriptions | {len(result.failures)} |", "",
             f"**Draft totals:** {totals_text(result.totals)}", "",
             f"Files: `{out_dir}/{period}/drafts/`"]
    if result.late:
        lines += ["", "**Late usage:**", "", "| subscription | period | meter | billed | now | "
                  "action |", "|---|---|---|---:|---:|---|"]
        lines += [f"| {i.subscription_id} | {i.period} | {i.meter} | {i.billed} | "
                  f"{i.current} | {i.action} {i.target or ''} |" for i in result.late]
    if result.failures:
        lines += ["", "**Not billed:**", ""]
        lines += [f"- {f['subscription']} ({f['customer']}, {f['period']}): {f['reason']}"
                  for f in result.failures]
    create_markdown_artifact(markdown="\n".join(lines), key=f"drafts-{period}",
                             description=f"Draft invoices for {period}")


def publish_finalized(period: str, invoices: list[str], credit_notes: list[str],
                      totals: Mapping[str, Decimal], report: RenderReport,
                      out_dir: str) -> None:
    lines = [f"### Issued for {period}", "",
             f"- invoices finalized: **{len(invoices)}**"
             + (f" ({invoices[0]} … {invoices[-1]})" if invoices else ""),
             f"- credit notes issued: **{len(credit_notes)}**"
             + (f" ({', '.join(credit_notes[:10])})" if credit_notes else ""),
             f"- amount due by currency: **{totals_text(totals)}**",
             f"- documents rendered: {report.rendered}", "",
             f"Files: `{out_dir}/{period}/`"]
    create_markdown_artifact(markdown="\n".join(lines), key=f"issued-{period}",
                             description=f"Invoices and credit notes issued for {period}")


def money_dict(totals: Mapping[str, Decimal]) -> dict[str, Any]:
    return {c: format(v, "f") for c, v in sorted(totals.items())}
