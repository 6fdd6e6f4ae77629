"""Recording invoices: one per subscription per period, numbered once, never duplicated.

A re-run keeps each invoice's number. If what the customer is billed for is unchanged,
the stored invoice (and its issue date) stays as it is; if it changed (late events, a
catalog fix) the invoice is revised in place: same number, new issue date, revision + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from billing_core.db.models import InvoiceRow
from billing_core.db.types import dumps_exact
from billing_core.invoice import Invoice, content_hash, invoice_to_dict


@dataclass(frozen=True)
class RecordedInvoice:
    invoice: Invoice
    status: str  # created | updated | unchanged
    revision: int


def invoice_number(period: str, sequence: int) -> str:
    """e.g. INV-202610-00001: the period and a gapless sequence within it."""
    return f"INV-{period.replace('-', '')}-{sequence:05d}"


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record_invoices(engine: Engine, drafts: list[Invoice], billing_run_id: int | None,
                    today: date | None = None) -> list[RecordedInvoice]:
    """Number and store draft invoices in one transaction; returns them numbered."""
    today = today or _utcnow().date()
    now = _utcnow()
    recorded: list[RecordedInvoice] = []
    with Session(engine) as session, session.begin():
        periods = {str(d.period) for d in drafts}
        existing = {
            (row.subscription_id, row.period): row
            for row in session.exec(select(InvoiceRow).where(InvoiceRow.period.in_(periods)))
        } if periods else {}
        next_sequence = {
            period: (session.exec(select(func.max(InvoiceRow.sequence))
                                  .where(InvoiceRow.period == period)).one() or 0) + 1
            for period in periods
        }
        for draft in drafts:
            period = str(draft.period)
            digest = content_hash(draft)
            row = existing.get((draft.subscription.id, period))
            if row is None:
                sequence = next_sequence[period]
                next_sequence[period] += 1
                invoice = draft.numbered(invoice_number(period, sequence), today)
                row = InvoiceRow(
                    invoice_number=invoice.invoice_number, subscription_id=draft.subscription.id,
                    customer_id=draft.customer.id, period=period, sequence=sequence,
                    currency=draft.currency, subtotal=draft.subtotal, total=draft.total,
                    issue_date=today, content_hash=digest,
                    document=dumps_exact(invoice_to_dict(invoice)),
                    billing_run_id=billing_run_id, revision=1, created_at=now, updated_at=now)
                session.add(row)
                recorded.append(RecordedInvoice(invoice, "created", 1))
            elif row.content_hash == digest:
                invoice = draft.numbered(row.invoice_number, row.issue_date)
                recorded.append(RecordedInvoice(invoice, "unchanged", row.revision))
            else:
                invoice = draft.numbered(row.invoice_number, today)
                row.subtotal, row.total = draft.subtotal, draft.total
                row.issue_date, row.content_hash = today, digest
                row.document = dumps_exact(invoice_to_dict(invoice))
                row.billing_run_id, row.revision, row.updated_at = billing_run_id, \
                    row.revision + 1, now
                session.add(row)
                recorded.append(RecordedInvoice(invoice, "updated", row.revision))
    return recorded
