"""Pricing: usage to invoice lines. Pure functions, Decimal only.

amount = max(0, quantity - free_threshold) x price_per_unit, rounded half-up to the
currency's minor units per line; the subtotal is the sum of the rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing_core.catalog import Charge, Meter, Product
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


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice line; `meter` is None for the product's fixed base fee."""

    meter: str | None
    description: str
    unit: str
    quantity: Decimal
    free_units: Decimal
    chargeable_units: Decimal
    unit_price: Decimal
    amount: Decimal


def base_fee_line(product: Product, currency: str) -> InvoiceLine:
    amount = round_money(product.base_price, currency)
    return InvoiceLine(meter=None, description=f"{product.name} — base fee", unit="",
                       quantity=Decimal(1), free_units=ZERO, chargeable_units=Decimal(1),
                       unit_price=product.base_price, amount=amount)


def charge_line(charge: Charge, meter: Meter, quantity: Decimal, currency: str) -> InvoiceLine:
    priced = price_charge(quantity, charge.free_threshold, charge.price_per_unit, currency)
    return InvoiceLine(meter=meter.key, description=meter.name, unit=meter.unit,
                       quantity=priced.quantity, free_units=priced.free_units,
                       chargeable_units=priced.chargeable_units, unit_price=priced.unit_price,
                       amount=priced.amount)


def price_lines(product: Product, meters: dict[str, Meter], quantities: dict[str, Decimal],
                currency: str) -> list[InvoiceLine]:
    """The base fee (when the product has one) and one line per charge, in catalog order."""
    lines = [base_fee_line(product, currency)] if product.base_price > 0 else []
    for charge in product.charges:
        lines.append(charge_line(charge, meters[charge.meter],
                                 quantities.get(charge.meter, ZERO), currency))
    return lines


def subtotal(lines: list[InvoiceLine]) -> Decimal:
    """Sum of the already-rounded line amounts."""
    total = ZERO
    for line in lines:
        total = EXACT.add(total, line.amount)
    return total
