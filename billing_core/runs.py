"""Run history: one billing_run row per billing run, whatever its outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from billing_core.db.models import BillingRunRow


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(engine: Engine, period: str, customers: list[str] | None,
              flow_run_id: str | None) -> int:
    """Open a billing_run row with status 'running'; returns its id."""
    with Session(engine) as session, session.begin():
        row = BillingRunRow(period=period, flow_run_id=flow_run_id, started_at=_utcnow(),
                            status="running", customers=customers)
        session.add(row)
        session.flush()
        return row.id


def finish_run(engine: Engine, run_id: int, status: str, *, subscriptions: int = 0,
               created: int = 0, updated: int = 0, unchanged: int = 0,
               currency: str | None = None, total: Decimal | None = None,
               skipped: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Close a billing_run row with its outcome, counts and total."""
    with Session(engine) as session, session.begin():
        row = session.get(BillingRunRow, run_id)
        row.ended_at = _utcnow()
        row.status = status
        row.subscriptions = subscriptions
        row.invoices_created, row.invoices_updated, row.invoices_unchanged = \
            created, updated, unchanged
        row.currency, row.total, row.skipped, row.error = currency, total, skipped, error
        session.add(row)


def list_runs(engine: Engine, limit: int = 20) -> list[BillingRunRow]:
    """The latest billing runs, newest first."""
    with Session(engine) as session:
        rows = session.exec(select(BillingRunRow).order_by(BillingRunRow.id.desc())
                            .limit(limit)).all()
        session.expunge_all()
        return list(rows)
