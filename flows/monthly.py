"""Flow: the scheduled monthly run — ingest the inbox, then bill the month just ended."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger

from billing_core.ingest.readers import expand_paths
from billing_core.periods import BillingPeriod
from flows.billing import bill_cycle
from flows.common import Period
from flows.ingest import ingest_events


def inbox_dir() -> Path:
    return Path(os.environ.get("BILLING_INBOX", "inbox"))


@flow(name="monthly-billing")
def monthly_billing(period: Period | None = None, out_dir: str = "invoices") -> dict:
    """Ingest every file in the inbox (BILLING_INBOX, default ./inbox), move the files that
    were read to inbox/processed/, then bill `period` (default: the last closed month)."""
    logger = get_run_logger()
    inbox = inbox_dir()
    billed = period or str(BillingPeriod.last_closed())
    files, _ = expand_paths([inbox]) if inbox.is_dir() else ([], [])
    files = [f for f in files if "processed" not in f.relative_to(inbox).parts]
    ingested = None
    if files:
        ingested = ingest_events([str(f) for f in files])
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for f in files:
            target = inbox / "processed" / stamp / f.relative_to(inbox)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), target)
    else:
        logger.info("inbox %s has no event files", inbox)
    result = bill_cycle(billed, out_dir=out_dir)
    return {"ingested": ingested, "billed": result}
