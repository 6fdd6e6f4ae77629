"""The invoice document: built from priced lines, serialised to JSON with decimal strings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from billing_core.catalog import Customer, Product, Seller, Subscription
from billing_core.money import minor_units, normalize_quantity
from billing_core.periods import BillingPeriod
from billing_core.pricing import InvoiceLine, subtotal


@dataclass(frozen=True)
class Invoice:
    invoice_number: str
    issue_date: date
    period: BillingPeriod
    currency: str
    seller: Seller
    customer: Customer
    subscription: Subscription
    product: Product
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    total: Decimal

    @property
    def service_start(self) -> date:
        """First day the subscription was active in the period."""
        return max(self.period.start_date, self.subscription.start)

    @property
    def service_end(self) -> date:
        """Day after the last one the subscription was active in the period (exclusive)."""
        end = self.subscription.end
        return min(self.period.end_date, end) if end else self.period.end_date

    def numbered(self, invoice_number: str, issue_date: date) -> Invoice:
        return replace(self, invoice_number=invoice_number, issue_date=issue_date)


def draft_invoice(seller: Seller, customer: Customer, subscription: Subscription, product: Product,
                  period: BillingPeriod, currency: str, lines: list[InvoiceLine]) -> Invoice:
    """An invoice without its number and issue date (given when it is recorded)."""
    amount = subtotal(lines)
    return Invoice(invoice_number="", issue_date=date.min, period=period, currency=currency,
                   seller=seller, customer=customer, subscription=subscription, product=product,
                   lines=tuple(lines), subtotal=amount, total=amount)


def _money(value: Decimal, currency: str) -> str:
    return format(value.quantize(Decimal(1).scaleb(-minor_units(currency))), "f")


def _number(value: Decimal) -> str:
    return format(normalize_quantity(value), "f")


def invoice_to_dict(invoice: Invoice) -> dict[str, Any]:
    """The JSON document: money and quantities as decimal strings; base fee has meter null."""
    c = invoice.currency
    return {
        "invoice_number": invoice.invoice_number,
        "issue_date": invoice.issue_date.isoformat(),
        "seller": {"name": invoice.seller.name, "email": invoice.seller.email,
                   "address": invoice.seller.address},
        "customer_id": invoice.customer.id,
        "customer": {"name": invoice.customer.name, "email": invoice.customer.email,
                     "address": invoice.customer.address},
        "subscription_id": invoice.subscription.id,
        "product": {"key": invoice.product.key, "name": invoice.product.name},
        "period": {"start": invoice.period.start_date.isoformat(),
                   "end": invoice.period.end_date.isoformat()},
        "service_period": {"start": invoice.service_start.isoformat(),
                           "end": invoice.service_end.isoformat()},
        "currency": c,
        "lines": [
            {"meter": line.meter, "description": line.description, "unit": line.unit,
             "quantity": _number(line.quantity), "free_units": _number(line.free_units),
             "chargeable_units": _number(line.chargeable_units),
             "unit_price": format(line.unit_price, "f"), "amount": _money(line.amount, c)}
            for line in invoice.lines
        ],
        "subtotal": _money(invoice.subtotal, c),
        "total": _money(invoice.total, c),
    }


def content_hash(invoice: Invoice) -> str:
    """Hash of what the customer is billed for (ignores number and issue date)."""
    document = invoice_to_dict(invoice)
    document.pop("invoice_number")
    document.pop("issue_date")
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
