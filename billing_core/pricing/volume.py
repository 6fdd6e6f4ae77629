"""Volume tiers: the tier the whole quantity falls in (the first whose `up_to` is at
least the quantity) prices every unit, plus that tier's flat fee. No usage falls in the
first tier (its flat fee is charged, as Stripe, Lago, OpenMeter do)."""

from __future__ import annotations

from decimal import Decimal

from billing_core.catalog.prices import VolumePrice
from billing_core.money import EXACT
from billing_core.pricing.usage import Priced, text


def price(model: VolumePrice, units: Decimal) -> Priced:
    number, tier = len(model.tiers), model.tiers[-1]
    for i, candidate in enumerate(model.tiers, start=1):
        if candidate.up_to is None or units <= candidate.up_to:
            number, tier = i, candidate
            break
    amount = EXACT.add(EXACT.multiply(units, tier.unit_price), tier.flat_fee)
    lower = model.tiers[number - 2].up_to if number > 1 else None
    return Priced(amount, unit_price=tier.unit_price,
                  detail={"model": "volume", "tier": number,
                          "from": text(lower) if lower is not None else "0",
                          "up_to": None if tier.up_to is None else text(tier.up_to),
                          "unit_price": format(tier.unit_price, "f"),
                          "flat_fee": format(tier.flat_fee, "f")})
