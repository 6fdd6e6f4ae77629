"""Use case: finalize a period — give its drafts legal numbers and freeze them.

Finalizing first drafts the period again (so every event ingested so far is billed),
then, in one transaction: takes gapless numbers (one series per kind and year), writes
the issue and due dates into each document, freezes its JSON, records what it billed per
meter, and issues the credit notes that replacement invoices need. The drafts are taken
in a fixed order (customer, subscription), so a finalization re-run after a crash gives
the same numbers to the same invoices; they are read, issued and written a page at a
time, so memory does not grow with their number. Files are rendered afterwards from the frozen
JSON and recorded by their SHA-256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from billing_core.catalog.models import Catalog
from billing_core.clock import Clock
from billing_core.credits.wallet import Wallet
from billing_core.cycles import grace_ends, period_state
from billing_core.db.repositories.documents import DocumentHead
from billing_core.documents.credit_notes import credit_note_document
from billing_core.documents.model import Document, from_json
from billing_core.documents.numbering import format_number, series
from billing_core.failpoints import failpoint
from billing_core.money import EXACT
from billing_core.periods import BillingPeriod
from billing_core.services.catalog import current_catalog
from billing_core.services.credits import (
    apply_on_issue,
    expire_lapsed,
    load_wallets,
    prepare_issue,
    restore_for,
)
from billing_core.services.delivery import Issued, queue_issued
from billing_core.services.drafting import DraftResult, draft_period, serialize
from billing_core.services.unit_of_work import SqlUnitOfWork


class NotFinalizable(ValueError):
    """The period is open or inside its grace period (and --force was not given)."""


@dataclass
class FinalizeResult:
    period: str
    draft: DraftResult
    invoices: list[str] = field(default_factory=list)
    credit_notes: list[str] = field(default_factory=list)
    document_ids: list[int] = field(default_factory=list)
    totals: dict[str, Decimal] = field(default_factory=dict)
    queued: int = 0


def check_finalizable(period: BillingPeriod, clock: Clock, catalog: Catalog,
                      force: bool) -> None:
    """Refuse a period that has not ended in every customer's time zone plus the grace
    period (unless forced)."""
    grace_days = catalog.settings.grace_period_days
    state = period_state(catalog, period, clock.now())
    if state == "future":
        raise NotFinalizable(f"period {period} has not started yet; nothing to finalize")
    if state in ("open", "grace") and not force:
        ends = grace_ends(catalog, period)
        why = ("is still open" if state == "open"
               else f"is inside its grace period of {grace_days} day(s)")
        raise NotFinalizable(
            f"period {period} {why}: late events may still arrive until "
            f"{ends:%Y-%m-%d %H:%M} UTC; finalize after that, or pass --force to issue the "
            f"invoices now")


BOUNDS = ("minimum", "maximum")


def billed_rows(document_id: int, subscription_id: str, doc: Document
                ) -> list[dict[str, Any]]:
    """What an issued invoice bills per charge and usage period: each charge's line
    (usage, its minimum true-up, or a late-usage adjustment) with its quantity, events
    (percentage prices) and amount."""
    return [{"document_id": document_id, "subscription_id": subscription_id,
             "usage_period": line.usage_period, "meter": line.meter,
             "quantity": line.quantity if line.kind not in BOUNDS else Decimal(0),
             "events": (line.detail or {}).get("events") if line.kind not in BOUNDS else 0,
             "amount": line.amount}
            for line in doc.lines if line.meter is not None and line.usage_period]


PAGE = 500   # documents issued per batch of updates (memory stays flat with the count)


def _order(row: DocumentHead) -> tuple[str, str, str, int]:
    return (row.period, row.customer_id, row.subscription_id, row.generation)


def finalize_period(uow: SqlUnitOfWork, clock: Clock, period: BillingPeriod,
                    customers: list[str] | None = None, force: bool = False,
                    run_id: int | None = None) -> FinalizeResult:
    """Draft the period again, then issue its drafts (and pending replacement invoices)."""
    with uow.read():
        catalog = current_catalog(uow)
    settings = catalog.settings
    check_finalizable(period, clock, catalog, force)
    drafted = draft_period(uow, clock, period, customers, run_id)
    result = FinalizeResult(period=str(period), draft=drafted)
    today, now = clock.today(), clock.now()
    label = str(period)
    chosen = set(customers) if customers else None
    with uow:
        drafts = sorted((d for d in uow.documents.draft_heads(customers=chosen)
                         if d.kind == "invoice" and (d.period == label or (
                             d.reissue_of_id is not None and d.period <= label))),
                        key=_order)
        replacing = [d for d in drafts if d.reissue_of_id is not None]
        numbers = uow.sequences.take(series("invoice", today.year), len(drafts))
        note_numbers = uow.sequences.take(series("credit_note", today.year), len(replacing))
        subs = {s.id: s for s in catalog.subscriptions}
        prepare_issue(uow, catalog, [(subs[d.subscription_id], BillingPeriod.parse(d.period))
                                     for d in drafts if d.subscription_id in subs], now)
        for head in replacing:   # what the replaced invoices took comes back first
            original = uow.documents.get(head.reissue_of_id or 0)
            assert original is not None and original.number is not None
            restore_for(uow, original, from_json(json.loads(original.content)).lines,
                        original.number, today, now, final=False)
        wallets: dict[str, Wallet] = {}
        load_wallets(uow, {subs[d.subscription_id].customer for d in drafts
                           if d.subscription_id in subs}, wallets)
        issued: list[Issued] = []
        for start in range(0, len(drafts), PAGE):   # a page of documents in memory at once
            page = list(zip(drafts[start:start + PAGE], numbers[start:start + PAGE],
                            strict=True))
            contents = uow.documents.contents(head.id for head, _ in page)
            changes, billed = [], []
            for head, sequence in page:
                number = format_number(settings.invoice_number_format, today.year, sequence)
                terms = catalog.payment_terms(head.customer_id)
                doc = from_json(json.loads(contents.pop(head.id))).issued(
                    number, today, today + timedelta(days=terms))
                if head.subscription_id in subs:
                    doc = apply_on_issue(uow, subs[head.subscription_id], doc, head.id, now,
                                         wallets)
                content, facts, digest = serialize(doc)
                paid = doc.amount_due == 0
                changes.append({
                    "id": head.id, "status": "paid" if paid else "finalized",
                    "number": number, "series": series("invoice", today.year),
                    "sequence": sequence, "issue_date": today, "due_date": doc.due_date,
                    "content": content, "facts_hash": facts, "document_hash": digest,
                    "subtotal": doc.subtotal, "total": doc.total,
                    "amount_due": doc.amount_due, "finalized_at": now,
                    "paid_at": now if paid else None, "paid_date": today if paid else None,
                    "file_hashes": None, "rendered_key": None, "billing_run_id": run_id,
                    "updated_at": now})
                billed += billed_rows(head.id, head.subscription_id, doc)
                issued.append(Issued(head.id, number, head.customer_id, digest, doc))
                result.invoices.append(number)
                result.document_ids.append(head.id)
                result.totals[doc.currency] = EXACT.add(
                    result.totals.get(doc.currency, Decimal(0)), doc.amount_due)
                failpoint("finalize.after_invoice")
            uow.documents.change_many(changes)
            uow.billed.record(billed)
            result.queued += queue_issued(uow, catalog, issued, now, run_id,
                                          held=settings.require_approval)
            issued.clear()
        for head, sequence in zip(replacing, note_numbers, strict=True):
            assert head.reissue_of_id is not None
            original = uow.documents.get(head.reissue_of_id)
            assert original is not None and original.number is not None
            replacement = uow.documents.get(head.id)
            assert replacement is not None
            number = format_number(settings.credit_note_number_format, today.year, sequence)
            note = credit_note_document(
                from_json(json.loads(original.content)), number, today,
                f"replaced by invoice {replacement.number} after late usage")
            content, facts, digest = serialize(note)
            note_id = uow.documents.add({
                "kind": "credit_note", "status": "issued", "number": number,
                "series": series("credit_note", today.year), "sequence": sequence,
                "subscription_id": original.subscription_id,
                "customer_id": original.customer_id, "period": original.period,
                "generation": original.generation, "credited_document_id": original.id,
                "currency": note.currency, "subtotal": note.subtotal, "total": note.total,
                "amount_due": Decimal(0), "issue_date": today, "facts_hash": facts,
                "document_hash": digest, "revision": 1, "content": content,
                "billing_run_id": run_id, "finalized_at": now, "created_at": now,
                "updated_at": now})
            status = "void" if original.status == "finalized" else original.status
            uow.documents.change(original.id or 0, superseded_by_id=head.id, status=status,
                                 voided_at=now if status == "void" else original.voided_at,
                                 void_reason=(f"replaced by {replacement.number} (late usage)"
                                              if status == "void" else original.void_reason),
                                 updated_at=now)
            result.credit_notes.append(number)
            result.document_ids.append(note_id)
            issued.append(Issued(note_id, number, original.customer_id, digest, note))
        expire_lapsed(uow, catalog, {d.customer_id for d in drafts}, period, now)
        result.queued += queue_issued(uow, catalog, issued, now, run_id,
                                      held=settings.require_approval)
        failpoint("finalize.before_commit")
        uow.commit()
    failpoint("finalize.after_commit")
    return result
