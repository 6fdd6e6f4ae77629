"""Per unit: every chargeable unit at one price."""

from __future__ import annotations

from decimal import Decimal

from billing_core.catalog.prices import PerUnitPrice
from billing_core.money import EXACT
from billing_core.pricing.usage import Priced


def price(model: PerUnitPrice, units: Decimal) -> Priced:
    return Priced(EXACT.multiply(units, model.unit_price), unit_price=model.unit_price,
                  detail={})
