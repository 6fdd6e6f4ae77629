"""Small builders for pricing tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing_core.catalog import Charge, Meter, Product
from billing_core.documents.model import Line
from billing_core.pricing import ChargeUsage, PricedCharge, price_charge
from billing_core.pricing.lines import CycleShare, charge_lines

D = Decimal
FULL = CycleShare(31, 31, False)


def charge(price: dict[str, Any] | None = None, *, per_unit: Any = None, free: Any = 0,
           minimum: Any = None, meter: str = "m") -> Charge:
    data: dict[str, Any] = {"meter": meter, "free_threshold": free}
    if price is not None:
        data["price"] = price
    if per_unit is not None:
        data["price_per_unit"] = per_unit
    if minimum is not None:
        data["minimum_amount"] = minimum
    return Charge.model_validate(data)


def priced(price: dict[str, Any], quantity: Any, currency: str = "USD", *, free: Any = 0,
           events: int = 0, free_amount: Any = 0, free_events: int = 0) -> PricedCharge:
    usage = ChargeUsage(D(quantity), events, D(free_amount), free_events)
    return price_charge(charge(price, free=free), usage, currency)


def per_unit(quantity: Any, free: Any, unit_price: Any, currency: str = "USD"
             ) -> PricedCharge:
    return price_charge(charge(per_unit=unit_price, free=free), ChargeUsage(quantity),
                        currency)


def meters(*keys: str) -> dict[str, Meter]:
    return {k: Meter(key=k, name=k, event_name=k, aggregation="count") for k in keys}


def product_lines(product: Product, quantities: dict[str, Any], currency: str = "USD",
                  share: CycleShare = FULL) -> list[Line]:
    """The charge lines (with minimums) of a product for a full cycle."""
    usage = {k: ChargeUsage(D(v)) for k, v in quantities.items()}
    return charge_lines(product, meters(*(c.meter for c in product.charges)), usage,
                        currency, "2026-10", share)
