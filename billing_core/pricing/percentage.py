"""Percentage: `rate` percent of the quantity (a sum of transaction amounts) plus
`fixed_fee` per matching event.

The free allowance follows Lago: events are taken in time order and are free (no rate,
no fee) until `free_events` events or `free_units` of amount are used up, whichever
comes first; the event that crosses `free_units` pays the rate on its part above it, and
its fee. The metering SQL measures the free part (`ChargeUsage.free_amount`,
`free_events`); with a total of zero no fee is charged (as in Lago)."""

from __future__ import annotations

from decimal import Decimal

from billing_core.catalog.prices import PercentagePrice
from billing_core.money import EXACT, percent_of
from billing_core.pricing.usage import ZERO, ChargeUsage, Priced, text


def price(model: PercentagePrice, units: Decimal, usage: ChargeUsage) -> Priced:
    free_amount = max(ZERO, min(usage.free_amount, units))
    base = max(ZERO, EXACT.subtract(units, free_amount))
    rate_amount = percent_of(base, model.rate)
    paid_events = max(0, usage.events - usage.free_events) if units != 0 else 0
    fees = EXACT.multiply(Decimal(paid_events), model.fixed_fee)
    return Priced(EXACT.add(rate_amount, fees),
                  detail={"model": "percentage", "rate": format(model.rate, "f"),
                          "free_amount": text(free_amount), "rated_amount": text(base),
                          "rate_amount": text(rate_amount), "events": usage.events,
                          "free_events": min(usage.free_events, usage.events),
                          "paid_events": paid_events,
                          "fixed_fee": format(model.fixed_fee, "f"),
                          "fixed_fees": text(fees)})
