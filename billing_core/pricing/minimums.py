"""Minimums and maximums: a charge's `minimum_amount` / `maximum_amount` and a product's
`minimum_spend` per cycle.

When the cycle's amount is below the minimum, a true-up line bills the difference. With
`proration: daily` and a subscription active only part of the cycle, the minimum is
scaled by the active days (rounded to minor units), as the base fee is.
A product's minimum spend compares the cycle's usage charges (with their own true-ups);
the base fee and adjustments for earlier periods do not count towards it.
A charge's `maximum_amount` caps it: a negative line takes off what exceeds the maximum
(scaled like the minimum).
"""

from __future__ import annotations

from decimal import Decimal

from billing_core.money import EXACT, ratio, round_money
from billing_core.pricing.usage import text


def prorated_minimum(minimum: Decimal, days: int, of_days: int, prorate: bool,
                     currency: str) -> Decimal:
    if not prorate or days >= of_days or of_days <= 0:
        return minimum
    return round_money(ratio(EXACT.multiply(minimum, Decimal(days)), of_days), currency)


def true_up(amount: Decimal, minimum: Decimal | None, days: int, of_days: int,
            prorate: bool, currency: str) -> tuple[Decimal, dict[str, object]] | None:
    """(the true-up amount, its detail) when `amount` is below the minimum, else None."""
    if minimum is None:
        return None
    due = prorated_minimum(minimum, days, of_days, prorate, currency)
    if amount >= due:
        return None
    detail: dict[str, object] = {"minimum": text(minimum), "charged": text(amount),
                                 "due": text(due)}
    if due != minimum:
        detail["proration"] = {"days": days, "of_days": of_days}
    return EXACT.subtract(due, amount), detail


def cap(amount: Decimal, maximum: Decimal | None, days: int, of_days: int, prorate: bool,
        currency: str) -> tuple[Decimal, dict[str, object]] | None:
    """(the negative amount that caps `amount` at the maximum, its detail), or None."""
    if maximum is None:
        return None
    limit = prorated_minimum(maximum, days, of_days, prorate, currency)
    if amount <= limit:
        return None
    detail: dict[str, object] = {"maximum": text(maximum), "charged": text(amount),
                                 "due": text(limit)}
    if limit != maximum:
        detail["proration"] = {"days": days, "of_days": of_days}
    return EXACT.subtract(limit, amount), detail
