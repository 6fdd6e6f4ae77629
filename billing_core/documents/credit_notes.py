"""Credit notes: a credit for all of an issued invoice, or for some of its lines.

A credit note lists the credited lines with the amounts credited (positive), refers to
the invoice by number and date, and states its reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from billing_core.documents.model import Document


class BadCreditLines(ValueError):
    """Line numbers that the invoice does not have."""


def credit_note_document(invoice: Document, number: str, issue_date: date, reason: str,
                         line_numbers: list[int] | None = None) -> Document:
    """A credit note for the invoice's lines numbered `line_numbers` (1-based; all when
    None)."""
    numbers = sorted(set(line_numbers)) if line_numbers else \
        list(range(1, len(invoice.lines) + 1))
    wrong = [n for n in numbers if not 1 <= n <= len(invoice.lines)]
    if wrong:
        raise BadCreditLines(f"invoice {invoice.number} has lines 1 to "
                             f"{len(invoice.lines)}, not {', '.join(map(str, wrong))}")
    lines = tuple(replace(invoice.lines[n - 1], credited_line=n) for n in numbers)
    return replace(invoice, document_type="credit_note", number=number,
                   draft_reference=None, issue_date=issue_date, due_date=None, lines=lines,
                   credits_number=invoice.number, credits_issue_date=invoice.issue_date,
                   reason=reason, notes=())
