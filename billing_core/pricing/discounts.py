"""Discounts: a subscription's coupons on one cycle's lines.

Each discount that is active in the cycle (`once`: the first cycle from its start,
`repeating`: the first `cycles` cycles, `forever`: all) takes off `percent_off` of the
lines it applies to, or `amount_off` (at most what those lines still amount to, so an
invoice never goes negative; an unused remainder is not carried over). Discounts apply in
the order listed, each on what the previous ones left. A discount applies to the cycle's
base fee, usage charges and their minimums (all, or those named in `applies_to`), never
to adjustments for earlier periods. Each discount is one negative line, rounded half-up.
"""

from __future__ import annotations

from decimal import Decimal

from billing_core.catalog.models import BASE_FEE, Discount
from billing_core.documents.model import Line
from billing_core.money import EXACT, percent_of, round_money
from billing_core.pricing.usage import ZERO, text

DISCOUNTABLE = ("base_fee", "usage", "minimum", "maximum")
PRODUCT_MINIMUM = "(minimum spend)"


def active(discount: Discount, number: int) -> bool:
    """Whether the discount applies to cycle `number` (1 = the cycle holding its start)."""
    if number < 1:
        return False
    if discount.duration == "once":
        return number == 1
    if discount.duration == "repeating":
        return number <= (discount.cycles or 0)
    return True


def _target(line: Line) -> str:
    if line.kind == "base_fee":
        return BASE_FEE
    return line.meter or PRODUCT_MINIMUM


def discount_lines(discounts: list[tuple[Discount, int]], lines: list[Line], currency: str,
                   period: str) -> list[Line]:
    """One negative line per active discount. `discounts`: (discount, its cycle number).
    A charge's line and its minimum or maximum line count as one (its net amount)."""
    remaining: dict[str, Decimal] = {}
    for line in lines:
        if line.kind in DISCOUNTABLE:
            key = _target(line)
            remaining[key] = EXACT.add(remaining.get(key, ZERO), line.amount)
    # What the discountable lines still amount to after the discounts issued so far, in
    # rounded money: each discount is rounded half-up on its own, so without this cap a
    # half cent rounded up twice could take an invoice below zero.
    unspent = ZERO
    for amount_left in remaining.values():
        unspent = EXACT.add(unspent, amount_left)
    result = []
    for discount, number in discounts:
        if not active(discount, number):
            continue
        eligible = [k for k in remaining if remaining[k] > 0 and (
            not discount.applies_to or k in discount.applies_to)]
        base = ZERO
        for key in eligible:
            base = EXACT.add(base, remaining[key])
        if base <= 0:
            continue
        allocation: dict[str, str] = {}
        if discount.percent_off is not None:
            amount = min(round_money(base, currency),
                         round_money(percent_of(base, discount.percent_off), currency))
            for key in eligible:   # each charge keeps (100 - p) % of itself, exactly
                taken = percent_of(remaining[key], discount.percent_off)
                remaining[key] = EXACT.subtract(remaining[key], taken)
                allocation[key] = text(taken)
            rule = {"percent_off": text(discount.percent_off)}
        else:
            assert discount.amount_off is not None
            amount = min(round_money(min(base, discount.amount_off), currency), unspent)
            left = amount
            for key in eligible:   # taken from the charges in invoice order
                take = min(left, remaining[key])
                remaining[key] = EXACT.subtract(remaining[key], take)
                left = EXACT.subtract(left, take)
                if take > 0:
                    allocation[key] = text(take)
            rule = {"amount_off": text(discount.amount_off)}
        amount = min(amount, unspent)   # the amount off was capped before it was allocated
        if amount <= 0:
            continue
        unspent = EXACT.subtract(unspent, amount)
        detail = {**rule, "duration": discount.duration, "cycle": number,
                  "applies_to": list(discount.applies_to) or None, "base": text(base),
                  "allocation": allocation}
        if discount.cycles:
            detail["cycles"] = discount.cycles
        result.append(Line(kind="discount", description=discount.name, amount=-amount,
                           quantity=Decimal(1), unit_price=-amount, usage_period=period,
                           chargeable_units=Decimal(1), detail=detail))
    return result
