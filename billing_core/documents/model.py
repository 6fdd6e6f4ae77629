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
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billing_core.money import EXACT, minor_units, normalize_quantity

LINE_KINDS = ("base_fee", "usage", "minimum", "maximum", "adjustment", "discount",
              "credit")
TAX_CATEGORIES = ("S", "Z", "AE", "E")   # standard, zero rate, reverse charge, exempt


@dataclass(frozen=True)
class LineTax:
    """One tax on one line: `rate` in percent, `amount` rounded to minor units."""

    name: str
    rate: Decimal
    amount: Decimal
    category: str = "S"

    def as_dict(self, currency: str) -> dict[str, Any]:
        return {"name": self.name, "rate": number_text(self.rate),
                "amount": money_text(self.amount, currency), "category": self.category}


@dataclass(frozen=True)
class Line:
    """One line. `meter` is None for the base fee, a product's minimum spend and a
    discount; `usage_period` is the period whose usage the line bills (an adjustment line
    bills an earlier one). `detail` shows how the amount was reached (tiers, packages,
    proration, the discount's rule), `taxes` the taxes computed on this line."""

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
    detail: dict[str, Any] | None = None
    taxes: tuple[LineTax, ...] = ()

    @property
    def tax(self) -> Decimal:
        total = Decimal(0)
        for tax in self.taxes:
            total = EXACT.add(total, tax.amount)
        return total


@dataclass(frozen=True)
class Party:
    name: str
    email: str = ""
    address: str = ""
    country: str | None = None
    city: str = ""
    postal_code: str = ""
    tax_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "email": self.email,
                                "address": self.address}
        for key in ("country", "city", "postal_code", "tax_id"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


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
    einvoice: str = "none"             # 'factur-x': the PDF carries EN 16931 XML
    locale: str = "en_US"
    timezone: str = "UTC"
    tax_mode: str = "exclusive"        # prices exclusive of tax, or 'inclusive'
    tax_note: str = ""                 # reverse charge / exemption: the legal mention
    usage_from: datetime | None = None  # the instants (UTC) whose events were counted
    usage_to: datetime | None = None

    @property
    def is_draft(self) -> bool:
        return self.number is None

    @property
    def subtotal(self) -> Decimal:
        """The sum of the lines (after discounts; with inclusive prices, tax included)."""
        total = Decimal(0)
        for line in self.lines:
            total = EXACT.add(total, line.amount)
        return total

    @property
    def tax_total(self) -> Decimal:
        total = Decimal(0)
        for line in self.lines:
            total = EXACT.add(total, line.tax)
        return total

    @property
    def net_total(self) -> Decimal:
        """The total without tax."""
        if self.tax_mode == "inclusive":
            return EXACT.subtract(self.subtotal, self.tax_total)
        return self.subtotal

    @property
    def total(self) -> Decimal:
        return EXACT.add(self.net_total, self.tax_total)

    def tax_summary(self) -> list[dict[str, Any]]:
        """Per tax (name, rate, category): the net amount taxed and the tax, summed from
        the lines (each line's tax is rounded on its own)."""
        groups: dict[tuple[str, Decimal, str], list[Decimal]] = {}
        for line in self.lines:
            net = line.amount if self.tax_mode != "inclusive" else \
                EXACT.subtract(line.amount, line.tax)
            for tax in line.taxes:
                key = (tax.name, tax.rate, tax.category)
                base, amount = groups.get(key, [Decimal(0), Decimal(0)])
                groups[key] = [EXACT.add(base, net), EXACT.add(amount, tax.amount)]
        return [{"name": name, "rate": rate, "category": category, "base": base,
                 "amount": amount}
                for (name, rate, category), (base, amount) in groups.items()]

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
    if line.detail:
        data["detail"] = line.detail
    if line.taxes:
        data["taxes"] = [tax.as_dict(currency) for tax in line.taxes]
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
        "seller": doc.seller.as_dict(),
        "customer_id": doc.customer_id,
        "customer": doc.customer.as_dict(),
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
    summary = doc.tax_summary()
    if summary:
        data["tax_mode"] = doc.tax_mode
        data["taxes"] = [{"name": t["name"], "rate": number_text(t["rate"]),
                          "category": t["category"], "base": money_text(t["base"], c),
                          "amount": money_text(t["amount"], c)} for t in summary]
        data["tax_total"] = money_text(doc.tax_total, c)
        data["net_total"] = money_text(doc.net_total, c)
    if doc.tax_note:
        data["tax_note"] = doc.tax_note
    if doc.locale != "en_US":
        data["locale"] = doc.locale
    if doc.timezone != "UTC":
        data["timezone"] = doc.timezone
    if doc.usage_from is not None and doc.usage_to is not None:
        data["usage_window"] = {"from": doc.usage_from.isoformat() + "Z",
                                "to": doc.usage_to.isoformat() + "Z"}
    if doc.einvoice != "none":
        data["einvoice"] = doc.einvoice
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
             note=line.get("note", ""), credited_line=line.get("credited_line"),
             detail=line.get("detail"),
             taxes=tuple(LineTax(t["name"], Decimal(t["rate"]), Decimal(t["amount"]),
                                 t.get("category", "S")) for t in line.get("taxes", ())))
        for line in data["lines"])
    window = data.get("usage_window") or {}
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
        notes=tuple(data.get("notes", ())), einvoice=data.get("einvoice", "none"),
        locale=data.get("locale", "en_US"), timezone=data.get("timezone", "UTC"),
        tax_mode=data.get("tax_mode", "exclusive"), tax_note=data.get("tax_note", ""),
        usage_from=_instant(window.get("from")), usage_to=_instant(window.get("to")))


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.removesuffix("Z")) if text else None


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_FACT_LINE_KEYS = ("kind", "meter", "usage_period", "quantity", "free_units",
                   "chargeable_units", "unit_price", "amount", "billed_quantity")
_NEWER_FACT_LINE_KEYS = ("detail", "taxes")   # only when present: older hashes stay valid


def facts_hash(doc: Document) -> str:
    """Hash of what the customer is billed for, not of how the document looks."""
    data = to_json(doc)
    facts = {
        "document_type": doc.document_type, "subscription_id": doc.subscription_id,
        "period": doc.period, "currency": doc.currency,
        "lines": [{**{k: line.get(k) for k in _FACT_LINE_KEYS},
                   **{k: line[k] for k in _NEWER_FACT_LINE_KEYS if k in line}}
                  for line in data["lines"]],
        "subtotal": data["subtotal"], "total": data["total"], "amount_due": data["amount_due"],
        "credits": doc.credits_number,
    }
    if "taxes" in data:       # absent on documents without taxes: their hash is unchanged
        facts["taxes"] = data["taxes"]
    return hashlib.sha256(canonical(facts).encode()).hexdigest()


def document_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()
