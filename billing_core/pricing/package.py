"""Package: units are sold in packages of `package_size`; a started package counts whole
(1,001 tokens at 0.04 per 1,000 are two packages, 0.08)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from billing_core.catalog.prices import PackagePrice
from billing_core.money import DIVISION, EXACT
from billing_core.pricing.usage import Priced, text


def packages(units: Decimal, size: Decimal) -> int:
    """How many packages `units` start (0 for none)."""
    if units <= 0:
        return 0
    return int(DIVISION.divide(units, size).to_integral_value(rounding=ROUND_CEILING))


def price(model: PackagePrice, units: Decimal) -> Priced:
    count = packages(units, model.package_size)
    return Priced(EXACT.multiply(Decimal(count), model.package_price),
                  detail={"model": "package", "packages": count,
                          "package_size": text(model.package_size),
                          "package_price": format(model.package_price, "f")})
