"""Flow: the scheduled monthly run — ingest the inbox, then draft the month just ended."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prefect import flow, get_run_logger

from billing_core.ingest.paths import expand_paths
from billing_core.periods import BillingPeriod
from flows.billing import bill_cycle
from flows.common import Period, clock
from flows.ingest import ingest_events


def inbox_dir() -> Path:
    return Path(os.environ.get("BILLING_INBOX", "inbox"))


@flow(name="monthly-billing")
def monthly_billing(period: Period | None = None, out_dir: str = "invoices") -> dict:
    """Ingest every file in the inbox (BILLING_INBOX, default ./inbox), move the files that
    were read to inbox/processed/<time>/, then draft the month's invoices. Finalizing
    (numbers, issue dates) is the finalize-invoices flow, after the grace period.

    Args:
        period: Billing month to draft, YYYY-MM. Empty means the last closed month (so the
            run on the 1st drafts the month that just ended).
        out_dir: Folder for the documents, on the machine that runs the flow.
    """
    logger = get_run_logger()
    inbox = inbox_dir()
    now = clock().now()
    billed = period or str(BillingPeriod.last_closed(now))
    files = expand_paths([inbox]).files if inbox.is_dir() else []
    files = [f for f in files if "processed" not in f.relative_to(inbox).parts]
    ingested = None
    if files:
        ingested = ingest_events([str(f) for f in files])
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        for f in files:
            target = inbox / "processed" / stamp / f.relative_to(inbox)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), target)
    else:
        logger.info("inbox %s has no event files", inbox.resolve())
    result = bill_cycle(billed, out_dir=out_dir)
    return {"ingested": ingested, "billed": result}
