"""The billing steps that flows orchestrate: draft and summarise (rendering: render.batch)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from billing_core.catalog import Catalog
from billing_core.invoice import Invoice, draft_invoice
from billing_core.invoice_store import RecordedInvoice
from billing_core.metering import PeriodUsage
from billing_core.money import EXACT
from billing_core.pricing import price_lines


def draft_invoices(catalog: Catalog, usage: PeriodUsage) -> list[Invoice]:
    """One priced, unnumbered invoice per active subscription."""
    meters = {m.key: m for m in catalog.meters}
    customers = {c.id: c for c in catalog.customers}
    products = {p.key: p for p in catalog.products}
    drafts = []
    for subscription in usage.subscriptions:
        product = products[subscription.product]
        quantities = {k: u.quantity for k, u in usage.usage.get(subscription.id, {}).items()}
        lines = price_lines(product, meters, quantities, catalog.currency)
        drafts.append(draft_invoice(catalog.seller, customers[subscription.customer],
                                    subscription, product, usage.period, catalog.currency,
                                    lines))
    return drafts


def usage_rows(recorded: list[RecordedInvoice], usage: PeriodUsage) -> list[dict[str, Any]]:
    """Per customer and meter: consumed, free, billable units and amount, with the invoice
    total (the table published as the run's artifact)."""
    rows: list[dict[str, Any]] = []
    for item in recorded:
        invoice = item.invoice
        for line in invoice.lines:
            matched = None
            if line.meter is not None:
                meter_usage = usage.usage.get(invoice.subscription.id, {}).get(line.meter)
                matched = meter_usage.matched_events if meter_usage else 0
            rows.append({
                "customer": invoice.customer.id,
                "invoice": invoice.invoice_number,
                "meter": line.meter or "(base fee)",
                "events": matched if matched is not None else "",
                "consumed": format(line.quantity, "f"),
                "free": format(line.free_units, "f"),
                "billable": format(line.chargeable_units, "f"),
                "amount": format(line.amount, "f"),
                "invoice_total": format(invoice.total, "f"),
                "status": item.status,
            })
    return rows


def grand_total(invoices: Iterable[Invoice]) -> Decimal:
    total = Decimal(0)
    for invoice in invoices:
        total = EXACT.add(total, invoice.total)
    return total
