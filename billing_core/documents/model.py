"""Invoices and credit notes as values, and their JSON document.

The JSON document is what is stored, written to `<number>.json`, and rendered to HTML and
PDF: a finalized document is rendered from its stored JSON alone, so later catalog or
code changes cannot alter it. Money and quantities are decimal strings.

Two hashes tell changes apart:
- `facts_hash`: the billing facts (subscription, period, lines: meter, quantities, prices,
  amounts, totals). A draft's revision goes up only when these change.
- `document_hash`: the whole document (also names, addresses, descriptions). A draft is
  rendered again only when this (or the templates) changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from billing_core.money import EXACT, minor_units, normalize_quantity

LINE_KINDS = ("base_fee", "usage", "adjustment")


@dataclass(frozen=True)
class Line:
    """One line. `meter` is None for the base fee; `usage_period` is the period whose
    usage the line bills (an adjustment line bills an earlier one)."""

    kind: str
    description: str
    amount: Decimal
    quantity: Decimal = Decimal(1)
    unit_price: Decimal = Decimal(0)
    meter: str | None = None
    usage_period: str | None = None
    unit: str = ""
    free_units: Decimal = Decimal(0)
    chargeable_units: Decimal = Decimal(0)
    billed_quantity: Decimal | None = None   # adjustments: quantity already billed
    note: str = ""
    credited_line: int | None = None          # credit notes: the invoice line (1-based)


@dataclass(frozen=True)
class Party:
    name: str
    email: str = ""
    address: str = ""


@dataclass(frozen=True)
class Document:
    """An invoice or a credit note, draft or issued."""

    document_type: str                 # invoice | credit_note
    subscription_id: str
    customer_id: str
    customer: Party
    seller: Party
    product_key: str
    product_name: str
    period: str                        # YYYY-MM
    period_start: date
    period_end: date                   # exclusive
    service_start: date
    service_end: date                  # exclusive
    currency: str
    lines: tuple[Line, ...]
    number: str | None = None
    draft_reference: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    credits_number: str | None = None  # credit note: the invoice it credits
    credits_issue_date: date | None = None
    reason: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_draft(self) -> bool:
        return self.number is None

    @property
    def subtotal(self) -> Decimal:
        total = Decimal(0)
        for line in self.lines:
            total = EXACT.add(total, line.amount)
        return total

    @property
    def total(self) -> Decimal:
        return self.subtotal

    @property
    def amount_due(self) -> Decimal:
        return self.total

    @property
    def reference(self) -> str:
        return self.number or self.draft_reference or ""

    def issued(self, number: str, issue_date: date, due_date: date | None) -> Document:
        return replace(self, number=number, draft_reference=None, issue_date=issue_date,
                       due_date=due_date)


def money_text(value: Decimal, currency: str) -> str:
    return format(value.quantize(Decimal(1).scaleb(-minor_units(currency)), context=EXACT),
                  "f")


def number_text(value: Decimal) -> str:
    return format(normalize_quantity(value), "f")


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _line_dict(line: Line, currency: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": line.kind, "meter": line.meter, "usage_period": line.usage_period,
        "description": line.description, "unit": line.unit,
        "quantity": number_text(line.quantity), "free_units": number_text(line.free_units),
        "chargeable_units": number_text(line.chargeable_units),
        "unit_price": format(line.unit_price, "f"), "amount": money_text(line.amount, currency),
    }
    if line.billed_quantity is not None:
        data["billed_quantity"] = number_text(line.billed_quantity)
    if line.note:
        data["note"] = line.note
    if line.credited_line is not None:
        data["credited_line"] = line.credited_line
    return data


def to_json(doc: Document) -> dict[str, Any]:
    """The JSON document (the shape of `<number>.json`)."""
    c = doc.currency
    data: dict[str, Any] = {
        "document_type": doc.document_type,
        "invoice_number" if doc.document_type == "invoice" else "credit_note_number":
            doc.number,
        "draft_reference": doc.draft_reference,
        "issue_date": _day(doc.issue_date),
        "due_date": _day(doc.due_date),
        "seller": {"name": doc.seller.name, "email": doc.seller.email,
                   "address": doc.seller.address},
        "customer_id": doc.customer_id,
        "customer": {"name": doc.customer.name, "email": doc.customer.email,
                     "address": doc.customer.address},
        "subscription_id": doc.subscription_id,
        "product": {"key": doc.product_key, "name": doc.product_name},
        "period": {"label": doc.period, "start": doc.period_start.isoformat(),
                   "end": doc.period_end.isoformat()},
        "service_period": {"start": doc.service_start.isoformat(),
                           "end": doc.service_end.isoformat()},
        "currency": c,
        "lines": [_line_dict(line, c) for line in doc.lines],
        "subtotal": money_text(doc.subtotal, c),
        "total": money_text(doc.total, c),
        "amount_due": money_text(doc.amount_due, c),
        "notes": list(doc.notes),
    }
    if doc.document_type == "credit_note":
        data["credits_invoice"] = {"number": doc.credits_number,
                                   "issue_date": _day(doc.credits_issue_date)}
        data["reason"] = doc.reason
    return data


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def from_json(data: dict[str, Any]) -> Document:
    """The Document a stored JSON document describes."""
    kind = data["document_type"]
    number = data.get("invoice_number") if kind == "invoice" else data.get("credit_note_number")
    credits = data.get("credits_invoice") or {}
    lines = tuple(
        Line(kind=line["kind"], description=line["description"],
             amount=Decimal(line["amount"]), quantity=Decimal(line["quantity"]),
             unit_price=Decimal(line["unit_price"]), meter=line.get("meter"),
             usage_period=line.get("usage_period"), unit=line.get("unit", ""),
             free_units=Decimal(line["free_units"]),
             chargeable_units=Decimal(line["chargeable_units"]),
             billed_quantity=(Decimal(line["billed_quantity"])
                              if line.get("billed_quantity") is not None else None),
             note=line.get("note", ""), credited_line=line.get("credited_line"))
        for line in data["lines"])
    return Document(
        document_type=kind, subscription_id=data["subscription_id"],
        customer_id=data["customer_id"], customer=Party(**data["customer"]),
        seller=Party(**data["seller"]), product_key=data["product"]["key"],
        product_name=data["product"]["name"], period=data["period"]["label"],
        period_start=date.fromisoformat(data["period"]["start"]),
        period_end=date.fromisoformat(data["period"]["end"]),
        service_start=date.fromisoformat(data["service_period"]["start"]),
        service_end=date.fromisoformat(data["service_period"]["end"]),
        currency=data["currency"], lines=lines, number=number,
        draft_reference=data.get("draft_reference"), issue_date=_date(data.get("issue_date")),
        due_date=_date(data.get("due_date")), credits_number=credits.get("number"),
        credits_issue_date=_date(credits.get("issue_date")), reason=data.get("reason", ""),
        notes=tuple(data.get("notes", ())))


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_FACT_LINE_KEYS = ("kind", "meter", "usage_period", "quantity", "free_units",
                   "chargeable_units", "unit_price", "amount", "billed_quantity")


def facts_hash(doc: Document) -> str:
    """Hash of what the customer is billed for, not of how the document looks."""
    data = to_json(doc)
    facts = {
        "document_type": doc.document_type, "subscription_id": doc.subscription_id,
        "period": doc.period, "currency": doc.currency,
        "lines": [{k: line.get(k) for k in _FACT_LINE_KEYS} for line in data["lines"]],
        "subtotal": data["subtotal"], "total": data["total"], "amount_due": data["amount_due"],
        "credits": doc.credits_number,
    }
    return hashlib.sha256(canonical(facts).encode()).hexdigest()


def document_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()
