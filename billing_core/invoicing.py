"""Building invoice documents from the catalog and measured usage. Pure functions.

Order on an invoice: the base fee, one line per charge (catalog order), then usage
adjustments for earlier periods (oldest first, in charge order).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from billing_core.catalog.models import Catalog, Subscription
from billing_core.documents.model import Document, Line, Party
from billing_core.periods import BillingPeriod
from billing_core.pricing import adjustment_line, price_lines


def service_range(subscription: Subscription, period: BillingPeriod) -> tuple[date, date] | None:
    """The days [start, end) of `period` on which the subscription is active, or None."""
    start = max(period.start_date, subscription.start)
    end = min(period.end_date, subscription.end) if subscription.end else period.end_date
    return (start, end) if start < end else None


def usage_window(subscription: Subscription, period: BillingPeriod,
                 until: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The time range whose events count for the subscription in `period` (naive UTC),
    cut at `until` when given (a preview up to now)."""
    days = service_range(subscription, period)
    if days is None:
        return None
    start = datetime(days[0].year, days[0].month, days[0].day)
    end = datetime(days[1].year, days[1].month, days[1].day)
    if until is not None:
        end = min(end, until)
    return (start, end) if start < end else None


def parties(catalog: Catalog, customer_id: str) -> tuple[Party, Party]:
    seller, customer = catalog.seller, catalog.customer(customer_id)
    return (Party(seller.name, seller.email, seller.address),
            Party(customer.name, customer.email, customer.address))


def invoice_document(catalog: Catalog, subscription: Subscription, period: BillingPeriod,
                     quantities: Mapping[str, Decimal] | None,
                     adjustments: list[Line], draft_reference: str) -> Document:
    """A draft invoice. `quantities` None: the subscription is not active in `period` and
    the invoice only carries `adjustments` for earlier periods."""
    product = catalog.product(subscription.product)
    seller, customer = parties(catalog, subscription.customer)
    days = service_range(subscription, period) or (period.start_date, period.start_date)
    lines: list[Line] = []
    if quantities is not None:
        lines = price_lines(product, dict(catalog.meters_by_key), dict(quantities),
                            catalog.currency, str(period))
    lines.extend(adjustments)
    return Document(
        document_type="invoice", subscription_id=subscription.id,
        customer_id=subscription.customer, customer=customer, seller=seller,
        product_key=product.key, product_name=product.name, period=str(period),
        period_start=period.start_date, period_end=period.end_date,
        service_start=days[0], service_end=days[1], currency=catalog.currency,
        lines=tuple(lines), draft_reference=draft_reference)


def late_usage_lines(catalog: Catalog, subscription: Subscription, late: BillingPeriod,
                     current: Mapping[str, Decimal], billed: Mapping[str, Decimal]
                     ) -> list[Line]:
    """Adjustment lines for the charges of `late` whose current quantity differs from what
    was billed (priced with the rules of that period)."""
    product = catalog.product(subscription.product)
    lines = []
    for charge in product.charges:
        now = current.get(charge.meter, Decimal(0))
        before = billed.get(charge.meter, Decimal(0))
        if now != before:
            lines.append(adjustment_line(charge, catalog.meter(charge.meter), before, now,
                                         catalog.currency, str(late), late.long_name()))
    return lines
