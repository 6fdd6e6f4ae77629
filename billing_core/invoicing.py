"""Building invoice documents from the catalog and measured usage. Pure functions.

A subscription's invoice for a period bills its cycle of that period (`cycles`) with the
product version in effect on the cycle's first day, in the product's currency, in the
order of `pricing.lines`: base fee, charges with their minimums, the product's minimum
spend, adjustments for earlier periods, discounts; then taxes on every line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from babel.numbers import format_decimal

from billing_core.catalog.models import Catalog, Product, Subscription
from billing_core.catalog.prices import PercentagePrice
from billing_core.credits.entitlements import entitlement_cycle
from billing_core.credits.wallet import Wallet
from billing_core.cycles import (
    active_days,
    base_fee_share,
    cycle,
    cycle_number,
    cycle_share,
    usage_window,
)
from billing_core.documents.model import Document, Line, Party
from billing_core.metering import Allowance, MeterUsage
from billing_core.money import EXACT
from billing_core.periods import BillingPeriod
from billing_core.pricing.charges import price_charge
from billing_core.pricing.discounts import discount_lines
from billing_core.pricing.lines import (
    CycleShare,
    adjustment_detail,
    base_fee_line,
    charge_lines,
    charge_total,
    with_taxes,
)
from billing_core.pricing.taxes import treatment
from billing_core.pricing.usage import ZERO, Billed, ChargeUsage


def parties(catalog: Catalog, customer_id: str) -> tuple[Party, Party]:
    seller, customer = catalog.seller, catalog.customer(customer_id)
    return (Party(seller.name, seller.email, seller.address, seller.country, seller.city,
                  seller.postal_code, seller.tax_id),
            Party(customer.name, customer.email, customer.address, customer.country,
                  customer.city, customer.postal_code, customer.tax_id))


def product_for(catalog: Catalog, subscription: Subscription, period: BillingPeriod
                ) -> Product:
    """The product version that prices the subscription's cycle of `period`."""
    tz = catalog.timezone(subscription.customer)
    return catalog.product(subscription.product, on=cycle(subscription, period, tz).start)


def window_of(catalog: Catalog, subscription: Subscription, period: BillingPeriod,
              until: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The instants (naive UTC) whose events count for the subscription in `period`."""
    return usage_window(subscription, period, catalog.timezone(subscription.customer), until)


def allowances(product: Product) -> tuple[Allowance, ...]:
    """The free allowances the product's percentage prices need measured."""
    found = []
    for charge in product.charges:
        price = charge.pricing
        if isinstance(price, PercentagePrice) and (price.free_events or price.free_units):
            found.append(Allowance(charge.meter, price.free_events, price.free_units))
    return tuple(found)


def charge_usage(usage: MeterUsage | None) -> ChargeUsage:
    if usage is None:
        return ChargeUsage(ZERO)
    return ChargeUsage(usage.quantity, usage.counted_events, usage.free_amount,
                       usage.free_events)


def _share(catalog: Catalog, subscription: Subscription, product: Product,
           period: BillingPeriod) -> CycleShare:
    c = cycle(subscription, period, catalog.timezone(subscription.customer))
    days, of_days = cycle_share(subscription, c)
    return CycleShare(days, of_days, product.proration == "daily")


def invoice_document(catalog: Catalog, subscription: Subscription, period: BillingPeriod,
                     usage: Mapping[str, ChargeUsage | Decimal] | None,
                     adjustments: list[Line], draft_reference: str,
                     until: datetime | None = None,
                     rollover: Mapping[str, Decimal] | None = None,
                     wallet: Wallet | None = None) -> Document:
    """A draft invoice. `usage` None: the subscription is not active in `period` and the
    invoice only carries `adjustments` for earlier periods (a plain Decimal is a
    quantity). `rollover`: the units each entitlement brings from the cycle before;
    `wallet`: the customer's prepaid credits (used up by this invoice)."""
    measured = None if usage is None else {
        k: v if isinstance(v, ChargeUsage) else ChargeUsage(v) for k, v in usage.items()}
    tz = catalog.timezone(subscription.customer)
    c = cycle(subscription, period, tz)
    product = catalog.product(subscription.product, on=c.start)
    currency = catalog.currency_of(product)
    customer = catalog.customer(subscription.customer)
    seller, buyer = parties(catalog, subscription.customer)
    days = active_days(subscription, c.start, c.end) or (c.start, c.start)
    label = str(period)
    lines: list[Line] = []
    if measured is not None:
        share = base_fee_share(subscription, product, c)
        if share is not None:
            lines.append(base_fee_line(product, share, currency, label))
        cycles = {e.meter: entitlement_cycle(
            e, (rollover or {}).get(e.meter, ZERO),
            measured.get(e.meter, ChargeUsage(ZERO)).quantity)
            for e in subscription.entitlements}
        lines.extend(charge_lines(product, catalog.meters_by_key, measured, currency, label,
                                  _share(catalog, subscription, product, period), cycles))
    own = list(lines)
    lines.extend(adjustments)
    if usage is not None and subscription.discounts:
        numbered = [(d, cycle_number(subscription, c, d.start or subscription.start))
                    for d in subscription.discounts]
        lines.extend(discount_lines(numbered, own, currency, label))
    how = treatment(catalog, customer)
    lines = with_taxes(lines, how, currency)
    window = usage_window(subscription, period, tz, until)
    doc = Document(
        document_type="invoice", subscription_id=subscription.id,
        customer_id=subscription.customer, customer=buyer, seller=seller,
        product_key=product.key, product_name=product.name, period=label,
        period_start=c.start, period_end=c.end, service_start=days[0], service_end=days[1],
        currency=currency, lines=tuple(lines), draft_reference=draft_reference,
        einvoice=catalog.einvoice(subscription.customer),
        locale=catalog.locale(subscription.customer), timezone=tz, tax_mode=how.mode,
        tax_note=how.note if how.rates else "",
        usage_from=window[0] if window else None, usage_to=window[1] if window else None)
    return wallet.apply(doc)[0] if wallet is not None else doc


def differs(product: Product, meter: str, current: ChargeUsage, billed: Billed) -> bool:
    """Whether late usage changed what a charge bills: its quantity, or (percentage
    prices, which charge per event) its number of events."""
    if current.quantity != billed.quantity:
        return True
    charge = next((c for c in product.charges if c.meter == meter), None)
    return (charge is not None and isinstance(charge.pricing, PercentagePrice)
            and billed.events is not None and current.events != billed.events)


def late_usage_lines(catalog: Catalog, subscription: Subscription, late: BillingPeriod,
                     current: Mapping[str, ChargeUsage], billed: Mapping[str, Billed],
                     covered: Mapping[str, Decimal] | None = None) -> list[Line]:
    """Adjustment lines for the charges of `late` whose usage differs from what was
    billed: each bills what the charge amounts to now (with the product version of that
    period, its free units, tiers and minimum, and the entitlement units its invoice
    covered: late usage is never covered, the cycle's units were settled when it was
    issued) less what was billed for it."""
    covered = covered or {}
    product = product_for(catalog, subscription, late)
    currency = catalog.currency_of(product)
    share = _share(catalog, subscription, product, late)
    lines = []
    for charge in product.charges:
        now = current.get(charge.meter, ChargeUsage(ZERO))
        before = billed.get(charge.meter, Billed())
        if not differs(product, charge.meter, now, before):
            continue
        meter = catalog.meter(charge.meter)
        units = covered.get(charge.meter, ZERO)
        after_amount = charge_total(charge, now, currency, share, units)
        before_amount = before.amount if before.amount is not None else charge_total(
            charge, ChargeUsage(before.quantity, before.events or 0), currency, share, units)
        delta = EXACT.subtract(now.quantity, before.quantity)
        shown = format_decimal(delta, locale="en_US", decimal_quantization=False)
        detail = adjustment_detail(before.quantity, now.quantity, before_amount,
                                   after_amount)
        detail["name"] = meter.name
        events = now.events - (before.events or 0)
        if isinstance(charge.pricing, PercentagePrice):
            detail["events"] = events
        was = price_charge(charge, ChargeUsage(before.quantity, before.events or 0),
                           currency)
        is_now = price_charge(charge, now, currency)
        lines.append(Line(
            kind="adjustment",
            description=f"Usage adjustment, {late.long_name()}: {shown} {meter.name}",
            meter=meter.key, usage_period=str(late), unit=meter.unit, quantity=delta,
            free_units=EXACT.subtract(is_now.free_units, was.free_units),
            chargeable_units=EXACT.subtract(is_now.chargeable_units, was.chargeable_units),
            unit_price=charge.price_per_unit or ZERO,
            amount=EXACT.subtract(after_amount, before_amount),
            billed_quantity=before.quantity, detail=detail))
    return lines
