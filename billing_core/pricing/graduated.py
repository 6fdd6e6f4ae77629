"""Graduated tiers: each tier prices the units inside it (with `up_to: 100, 1000, null`
units 1-100 at the first price, 101-1000 at the second, the rest at the third). A tier's
flat fee is charged once the quantity reaches the tier; the first tier is always
reached, so its flat fee is charged even for no usage (as Stripe, Lago, OpenMeter do)."""

from __future__ import annotations

from decimal import Decimal

from billing_core.catalog.prices import GraduatedPrice
from billing_core.money import EXACT
from billing_core.pricing.usage import ZERO, Priced, text


def price(model: GraduatedPrice, units: Decimal) -> Priced:
    total = ZERO
    rows = []
    lower = ZERO
    for number, tier in enumerate(model.tiers, start=1):
        if number > 1 and units <= lower:
            break
        upper = tier.up_to
        inside = units - lower if upper is None else min(units, upper) - lower
        inside = max(ZERO, inside)
        amount = EXACT.add(EXACT.multiply(inside, tier.unit_price), tier.flat_fee)
        total = EXACT.add(total, amount)
        rows.append({"tier": number, "from": text(lower),
                     "up_to": None if upper is None else text(upper), "units": text(inside),
                     "unit_price": format(tier.unit_price, "f"),
                     "flat_fee": format(tier.flat_fee, "f"), "amount": text(amount)})
        if upper is None:
            break
        lower = upper
    return Priced(total, detail={"model": "graduated", "tiers": rows})
