"""One charge of a cycle: free threshold, then the charge's price model, then rounding.

Order: `free_threshold` units are deducted first (they cost nothing in any model); the
rest is priced by the model; the line amount is rounded half-up to the currency's minor
units once. A `minimum_amount` tops the rounded amount up (see `minimums`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing_core.catalog.models import Charge
from billing_core.catalog.prices import (
    GraduatedPrice,
    PackagePrice,
    PercentagePrice,
    PerUnitPrice,
    VolumePrice,
)
from billing_core.money import EXACT, round_money
from billing_core.pricing import graduated, package, per_unit, percentage, volume
from billing_core.pricing.usage import ZERO, ChargeUsage, Priced


@dataclass(frozen=True)
class PricedCharge:
    quantity: Decimal
    free_units: Decimal          # free threshold used (and a percentage's free amount)
    chargeable_units: Decimal
    priced: Priced
    amount: Decimal              # rounded to minor units


def price_model(charge: Charge, units: Decimal, usage: ChargeUsage) -> Priced:
    model = charge.pricing
    if isinstance(model, PerUnitPrice):
        return per_unit.price(model, units)
    if isinstance(model, PackagePrice):
        return package.price(model, units)
    if isinstance(model, GraduatedPrice):
        return graduated.price(model, units)
    if isinstance(model, VolumePrice):
        return volume.price(model, units)
    if isinstance(model, PercentagePrice):
        return percentage.price(model, units, usage)
    raise TypeError(f"unknown price model {type(model).__name__}")


def price_charge(charge: Charge, usage: ChargeUsage, currency: str) -> PricedCharge:
    """Price one charge's usage for one cycle."""
    quantity = usage.quantity
    if not isinstance(quantity, Decimal):
        raise TypeError(f"quantity must be a Decimal, got {type(quantity).__name__}")
    threshold = charge.free_threshold
    chargeable = max(ZERO, EXACT.subtract(quantity, threshold))
    free = min(quantity, threshold) if quantity > 0 else ZERO
    priced = price_model(charge, chargeable, usage)
    if isinstance(charge.pricing, PercentagePrice):
        free = EXACT.add(free, Decimal(priced.detail["free_amount"]))
    return PricedCharge(quantity, free, chargeable, priced, round_money(priced.amount,
                                                                        currency))
