"""Flow: ingest usage-event files and account for every record."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from billing_core.db.models import AlertRow
from billing_core.ingest.progress import LoggedProgress
from billing_core.services.ingest import IngestReport, ingest_paths
from flows.common import clock, db_task, unit_of_work


@db_task("ingest-files")
def ingest_files(paths: list[str]) -> IngestReport:
    """Stream the files into the events table in chunks (re-running is harmless)."""
    logger = get_run_logger()
    return ingest_paths(unit_of_work(), list(paths), clock(),
                        progress=LoggedProgress(logger.info))


def alert_row(alert: AlertRow) -> dict[str, str]:
    return {"customer": alert.customer_id, "rule": alert.rule_id, "cycle": alert.period,
            "subject": alert.subject, "threshold": format(alert.threshold, "f"),
            "value": format(alert.value, "f"), "message": alert.message}


def report_markdown(report: IngestReport) -> str:
    lines = ["| file | records | ingested | duplicates | rejected | reasons |",
             "|---|---:|---:|---:|---:|---|"]
    for f in report.files:
        a = f.accounting
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(a.reasons.items()))
        lines.append(f"| {f.path} | {a.records} | {a.ingested} | {a.duplicates} | "
                     f"{a.rejected} | {reasons} |")
    t = report.total
    lines.append(f"| **total** | {t.records} | {t.ingested} | {t.duplicates} | {t.rejected} | |")
    if report.errors:
        lines += ["", "**Inputs that could not be read:**", *[f"- {e}" for e in report.errors]]
    return "\n".join(lines)


@flow(name="ingest-events", log_prints=True)
def ingest_events(paths: list[str]) -> dict:
    """Ingest event files or folders; every record ends ingested, duplicate or rejected
    (quarantined with its reason). Fails if an input could not be read, after storing
    everything that could.

    Args:
        paths: Files or folders on the machine that runs the flow (.jsonl, .ndjson, .json,
            .csv, optionally .gz, and .parquet); folders are read recursively.
    """
    logger = get_run_logger()
    report = ingest_files(paths)
    total = report.total
    logger.info("records %s: ingested %s, duplicates %s, rejected %s",
                total.records, total.ingested, total.duplicates, total.rejected)
    for reason, count in sorted(total.reasons.items()):
        logger.warning("rejected %s record(s): %s (see `billing quarantine list`)", count, reason)
    create_markdown_artifact(markdown=report_markdown(report), key="ingest-accounting",
                             description="What became of every input record")
    for note in report.notes:
        logger.warning(note)
    if report.alerts:
        for alert in report.alerts:
            logger.warning("alert %s for %s: %s", alert.rule_id, alert.customer_id,
                           alert.message)
        create_table_artifact(table=[alert_row(a) for a in report.alerts], key="alerts",
                              description="Alerts that fired after this ingest (each is "
                                          "e-mailed, and posted to its webhook, by the "
                                          "delivery outbox)")
    if report.errors:
        raise RuntimeError("some inputs could not be read: " + "; ".join(report.errors))
    return {**total.as_dict(), "reasons": dict(total.reasons),
            "alerts": len(report.alerts)}
