"""Use cases on issued documents: list, show, record a payment, void, credit.

An issued invoice is never edited or deleted: voiding it issues a credit note for
whatever of it was not credited yet; a credit note can also credit some of its lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing_core.clock import Clock
from billing_core.db.models import DocumentRow
from billing_core.documents.credit_notes import credit_note_document
from billing_core.documents.model import Document, from_json
from billing_core.documents.numbering import format_number, series
from billing_core.services.catalog import current_catalog
from billing_core.services.credits import restore_for
from billing_core.services.delivery import queue_documents
from billing_core.services.drafting import serialize
from billing_core.services.unit_of_work import SqlUnitOfWork

STATUSES = ("draft", "finalized", "paid", "void", "issued", "overdue")


class DocumentNotFound(LookupError):
    pass


class InvalidTransition(ValueError):
    """The document's status does not allow the operation."""


@dataclass(frozen=True)
class DocumentView:
    row: DocumentRow
    document: Document
    status: str                      # stored status, or 'overdue' (derived)
    credit_notes: tuple[DocumentRow, ...] = ()

    @property
    def reference(self) -> str:
        return self.row.number or self.row.draft_ref or ""

    @property
    def credited(self) -> Decimal:
        return sum((Decimal(n.total) for n in self.credit_notes), Decimal(0))


def shown_status(row: DocumentRow, today: date) -> str:
    """The stored status, or 'overdue' for a finalized invoice past its due date."""
    if row.status == "finalized" and row.due_date is not None and row.due_date < today \
            and row.amount_due > 0:
        return "overdue"
    return row.status


def _find(uow: SqlUnitOfWork, reference: str) -> DocumentRow:
    row = uow.documents.by_reference(reference)
    if row is None:
        raise DocumentNotFound(f"no invoice, credit note or draft {reference!r} "
                               f"(see `billing invoices list`)")
    return row


def list_documents(uow: SqlUnitOfWork, clock: Clock, *, period: str | None = None,
                   status: str | None = None, customer: str | None = None,
                   kind: str | None = None, limit: int | None = None) -> list[DocumentView]:
    today = clock.today()
    stored = ["finalized"] if status == "overdue" else ([status] if status else None)
    with uow.read():
        rows = uow.documents.listing(period=period, statuses=stored, customer=customer,
                                     kind=kind, limit=limit)
    views = [DocumentView(r, from_json(json.loads(r.content)), shown_status(r, today))
             for r in rows]
    return [v for v in views if status != "overdue" or v.status == "overdue"]


def show_document(uow: SqlUnitOfWork, clock: Clock, reference: str) -> DocumentView:
    with uow.read():
        row = _find(uow, reference)
        notes = tuple(uow.documents.credit_notes_for(row.id or 0))
    return DocumentView(row, from_json(json.loads(row.content)),
                        shown_status(row, clock.today()), notes)


def pay_invoice(uow: SqlUnitOfWork, clock: Clock, number: str, paid_on: date | None = None,
                reference: str | None = None) -> tuple[DocumentRow, bool]:
    """Record that an issued invoice was paid. Returns (row, newly recorded); recording
    the same payment again (same reference) changes nothing."""
    paid_on = paid_on or clock.today()
    with uow:
        row = _find(uow, number)
        if row.kind != "invoice":
            raise InvalidTransition(f"{number} is a credit note; only invoices are paid")
        if row.status == "draft":
            raise InvalidTransition(f"{number} is a draft; finalize it before recording a "
                                    f"payment")
        if row.status == "void":
            raise InvalidTransition(f"invoice {number} is void ({row.void_reason})")
        if row.status == "paid":
            if reference is not None and reference == row.payment_reference:
                return row, False
            raise InvalidTransition(
                f"invoice {number} is already paid (on {row.paid_date}"
                + (f", reference {row.payment_reference}" if row.payment_reference else "")
                + ")")
        if not uow.documents.change_if(row.id or 0, "finalized", status="paid",
                                       paid_at=clock.now(), paid_date=paid_on,
                                       payment_reference=reference, updated_at=clock.now()):
            raise InvalidTransition(f"invoice {number} changed meanwhile; try again")
        uow.commit()
        paid = uow.documents.get(row.id or 0)
    assert paid is not None
    return paid, True


def _credit(uow: SqlUnitOfWork, clock: Clock, row: DocumentRow, reason: str,
            line_numbers: list[int] | None) -> tuple[int, str]:
    """Issue a credit note inside the caller's transaction; returns (id, number)."""
    catalog = current_catalog(uow)
    today, now = clock.today(), clock.now()
    invoice = from_json(json.loads(row.content))
    credited = {line.credited_line for note in uow.documents.credit_notes_for(row.id or 0)
                for line in from_json(json.loads(note.content)).lines}
    wanted = sorted(set(line_numbers)) if line_numbers else \
        [n for n in range(1, len(invoice.lines) + 1) if n not in credited]
    again = [n for n in wanted if n in credited]
    if again:
        raise InvalidTransition(f"line(s) {', '.join(map(str, again))} of {row.number} "
                                f"were credited already")
    if not wanted:
        raise InvalidTransition(f"every line of {row.number} was credited already")
    probe = credit_note_document(invoice, "probe", today, reason, wanted)
    gives_back = any(invoice.lines[n - 1].kind == "credit" for n in wanted
                     if 0 < n <= len(invoice.lines))
    if probe.total < 0 or (probe.total == 0 and line_numbers and not gives_back):
        raise InvalidTransition(
            f"line(s) {', '.join(map(str, wanted))} of {row.number} add up to "
            f"{probe.total} {probe.currency}: a credit note must credit a positive amount "
            f"(credit a charge together with its discount or credit lines)")
    sequence = uow.sequences.take(series("credit_note", today.year))[0]
    number = format_number(catalog.settings.credit_note_number_format, today.year, sequence)
    note = credit_note_document(invoice, number, today, reason, wanted)
    content, facts, digest = serialize(note)
    note_id = uow.documents.add({
        "kind": "credit_note", "status": "issued", "number": number,
        "series": series("credit_note", today.year), "sequence": sequence,
        "subscription_id": row.subscription_id, "customer_id": row.customer_id,
        "period": row.period, "generation": row.generation, "credited_document_id": row.id,
        "currency": note.currency, "subtotal": note.subtotal, "total": note.total,
        "amount_due": Decimal(0), "issue_date": today, "facts_hash": facts,
        "document_hash": digest, "revision": 1, "content": content, "finalized_at": now,
        "created_at": now, "updated_at": now})
    restore_for(uow, row, note.lines, number, today, now, final=True)
    queue_documents(uow, catalog, uow.documents.by_ids([note_id]), now)
    return note_id, number


def void_invoice(uow: SqlUnitOfWork, clock: Clock, number: str, reason: str
                 ) -> tuple[int, str]:
    """Void an issued invoice that is unpaid (or had nothing due: credits paid it) by a
    credit note for what is not credited yet; the credits it used come back. Returns the
    credit note's (id, number)."""
    if not reason.strip():
        raise InvalidTransition("a reason is required to void an invoice")
    with uow:
        row = _find(uow, number)
        if row.kind != "invoice" or row.status == "draft":
            raise InvalidTransition(f"{number} is not an issued invoice; only issued "
                                    f"invoices can be voided")
        if row.status == "void":
            raise InvalidTransition(f"invoice {number} is already void ({row.void_reason})")
        if row.status == "paid" and row.amount_due != 0:
            raise InvalidTransition(f"invoice {number} is paid and cannot be voided; issue a "
                                    f"credit note for what is refunded (`billing invoices "
                                    f"credit {number}`)")
        # an invoice with nothing due (credits paid it) is voided: the credits come back
        note_id, note_number = _credit(uow, clock, row, reason, None)
        if not uow.documents.change_if(row.id or 0, row.status, status="void",
                                       voided_at=clock.now(),
                                       void_reason=f"{reason} (credit note {note_number})",
                                       updated_at=clock.now()):
            raise InvalidTransition(f"invoice {number} changed meanwhile; try again")
        uow.commit()
    return note_id, note_number


def credit_invoice(uow: SqlUnitOfWork, clock: Clock, number: str, reason: str,
                   lines: list[int] | None = None) -> tuple[int, str]:
    """A credit note for some lines (or all not yet credited) of an issued invoice."""
    if not reason.strip():
        raise InvalidTransition("a reason is required for a credit note")
    with uow:
        row = _find(uow, number)
        if row.kind != "invoice" or row.status in ("draft", "void"):
            raise InvalidTransition(f"{number} is not an issued invoice that can be credited "
                                    f"(status {row.status})")
        result = _credit(uow, clock, row, reason, lines)
        uow.commit()
    return result
