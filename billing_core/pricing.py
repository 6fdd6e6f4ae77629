"""Pricing: usage to invoice lines. Pure functions, Decimal only.

amount = max(0, quantity - free_threshold) x price_per_unit, rounded half-up to the
currency's minor units per line; the subtotal is the sum of the rounded lines. A late-usage
adjustment bills the difference between the charge at the current quantity and at the
quantity already billed, with the rules of the period the usage belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_decimal

from billing_core.catalog.models import Charge, Meter, Product
from billing_core.documents.model import Line
from billing_core.money import EXACT, round_money

ZERO = Decimal(0)


@dataclass(frozen=True)
class PricedCharge:
    quantity: Decimal
    free_units: Decimal
    chargeable_units: Decimal
    unit_price: Decimal
    amount: Decimal


def price_charge(quantity: Decimal, free_threshold: Decimal, price_per_unit: Decimal,
                 currency: str) -> PricedCharge:
    """Price one metered charge. `free_units` is how much of the allowance was used."""
    for name, value in (("quantity", quantity), ("free_threshold", free_threshold),
                        ("price_per_unit", price_per_unit)):
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    quantity, free_threshold = Decimal(quantity), Decimal(free_threshold)
    chargeable = max(ZERO, EXACT.subtract(quantity, free_threshold))
    free_units = min(quantity, free_threshold) if quantity > 0 else ZERO
    amount = round_money(EXACT.multiply(chargeable, Decimal(price_per_unit)), currency)
    return PricedCharge(quantity=quantity, free_units=free_units, chargeable_units=chargeable,
                        unit_price=Decimal(price_per_unit), amount=amount)


def base_fee_line(product: Product, currency: str, period: str) -> Line:
    return Line(kind="base_fee", description=f"{product.name} — base fee",
                amount=round_money(product.base_price, currency), quantity=Decimal(1),
                unit_price=product.base_price, usage_period=period,
                chargeable_units=Decimal(1))


def charge_line(charge: Charge, meter: Meter, quantity: Decimal, currency: str,
                period: str) -> Line:
    priced = price_charge(quantity, charge.free_threshold, charge.price_per_unit, currency)
    return Line(kind="usage", description=meter.name, meter=meter.key, usage_period=period,
                unit=meter.unit, quantity=priced.quantity, free_units=priced.free_units,
                chargeable_units=priced.chargeable_units, unit_price=priced.unit_price,
                amount=priced.amount)


def price_lines(product: Product, meters: dict[str, Meter], quantities: dict[str, Decimal],
                currency: str, period: str) -> list[Line]:
    """The base fee (when the product has one) and one line per charge, in catalog order."""
    lines = [base_fee_line(product, currency, period)] if product.base_price > 0 else []
    for charge in product.charges:
        lines.append(charge_line(charge, meters[charge.meter],
                                 quantities.get(charge.meter, ZERO), currency, period))
    return lines


def adjustment_line(charge: Charge, meter: Meter, billed: Decimal, current: Decimal,
                    currency: str, period: str, period_name: str) -> Line:
    """The difference late usage makes to one charge of a billed period."""
    before = price_charge(billed, charge.free_threshold, charge.price_per_unit, currency)
    after = price_charge(current, charge.free_threshold, charge.price_per_unit, currency)
    delta = EXACT.subtract(current, billed)
    shown = format_decimal(delta, locale="en_US", decimal_quantization=False)
    return Line(kind="adjustment",
                description=f"Usage adjustment, {period_name}: {shown} {meter.name}",
                meter=meter.key, usage_period=period, unit=meter.unit, quantity=delta,
                free_units=EXACT.subtract(after.free_units, before.free_units),
                chargeable_units=EXACT.subtract(after.chargeable_units,
                                                before.chargeable_units),
                unit_price=charge.price_per_unit,
                amount=EXACT.subtract(after.amount, before.amount), billed_quantity=billed)
