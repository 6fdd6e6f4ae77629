"""Prepaid monetary credits applied to invoices.

Order (as Stripe and Orb): the grant with the lower `priority` number first, then the one
that expires first (no expiry last), then the oldest. Each grant pays for the invoice's
eligible charges (all of them, or those in its `applies_to`: meter keys and `base_fee`)
after discounts and before tax: never more than it holds, never more than what is
eligible, never below zero, in whole minor units. A grant valid for only part of the
invoice's cycle (it starts or expires inside it) pays at most that share of the eligible
charges (its valid days over the cycle's days). Each grant used is one negative line,
taxed like the lines it pays for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from billing_core.catalog.models import BASE_FEE
from billing_core.documents.model import Document, Line
from billing_core.money import EXACT, minor_units, ratio
from billing_core.pricing.discounts import PRODUCT_MINIMUM
from billing_core.pricing.taxes import Rate, TaxTreatment, line_taxes
from billing_core.pricing.usage import ZERO, text

PAYABLE = ("base_fee", "usage", "minimum", "maximum", "adjustment")


@dataclass
class GrantBalance:
    """A monetary grant and what is left of it. `id` is None for a grant that would be
    created when the cycle is finalized (a subscription's recurring credit)."""

    id: int | None
    key: str | None
    name: str
    currency: str
    priority: int
    effective_from: date | None          # None: pays for any period
    expires: date | None
    created_at: datetime
    applies_to: tuple[str, ...]
    available: Decimal

    def order(self) -> tuple[Any, ...]:
        return (self.priority, self.expires or date.max, self.created_at, self.id or 0,
                self.key or "")


def _target(line: Line) -> str:
    if line.kind == "base_fee":
        return BASE_FEE
    return line.meter or PRODUCT_MINIMUM


def payable(doc: Document) -> dict[str, Decimal]:
    """What each target (meter, base_fee) of the invoice amounts to after its discounts."""
    remaining: dict[str, Decimal] = {}
    for line in doc.lines:
        if line.kind in PAYABLE:
            key = _target(line)
            remaining[key] = EXACT.add(remaining.get(key, ZERO), line.amount)
        elif line.kind in ("discount", "credit") and line.detail:
            for key, taken in (line.detail.get("allocation") or {}).items():
                remaining[key] = EXACT.subtract(remaining.get(key, ZERO), Decimal(taken))
    return remaining


def treatment_of(doc: Document) -> TaxTreatment:
    """The tax treatment the invoice's lines were taxed with."""
    for line in doc.lines:
        if line.taxes:
            return TaxTreatment(doc.tax_mode, tuple(Rate(t.name, t.rate, t.category)
                                                    for t in line.taxes))
    return TaxTreatment(doc.tax_mode)


def _valid_days(grant: GrantBalance, start: date, end: date) -> int:
    """Days of [start, end) on which the grant is valid (`expires` is its last day)."""
    first = start if grant.effective_from is None else max(start, grant.effective_from)
    last = end if grant.expires is None else min(end, grant.expires + timedelta(days=1))
    return max(0, (last - first).days)


def without_credits(doc: Document) -> Document:
    return replace(doc, lines=tuple(line for line in doc.lines if line.kind != "credit"))


class Wallet:
    """The balances of one customer's grants, used up invoice after invoice."""

    def __init__(self, grants: list[GrantBalance]) -> None:
        self.grants = sorted(grants, key=GrantBalance.order)

    def apply(self, doc: Document) -> tuple[Document, list[tuple[GrantBalance, Decimal]]]:
        """The invoice with a credit line per grant that pays for part of it, and what
        each grant paid (its balance is reduced)."""
        doc = without_credits(doc)
        remaining = {k: v for k, v in payable(doc).items() if v > 0}
        unit = Decimal(1).scaleb(-minor_units(doc.currency))
        how = treatment_of(doc)
        lines: list[Line] = []
        used: list[tuple[GrantBalance, Decimal]] = []
        cycle_days = max(1, (doc.period_end - doc.period_start).days)
        for grant in self.grants:
            if grant.currency != doc.currency or grant.available <= 0:
                continue
            days = _valid_days(grant, doc.period_start, doc.period_end)
            if days == 0:
                continue
            targets = [k for k in remaining if remaining[k] > 0 and (
                not grant.applies_to or k in grant.applies_to)]
            eligible = ZERO
            for key in targets:
                eligible = EXACT.add(eligible, remaining[key])
            if days < cycle_days:
                eligible = ratio(EXACT.multiply(eligible, Decimal(days)), cycle_days)
            eligible = eligible.quantize(unit, rounding=ROUND_DOWN)
            amount = min(grant.available, eligible)
            if amount <= 0:
                continue
            allocation: dict[str, str] = {}
            left = amount
            for key in targets:          # taken from the charges in invoice order
                take = min(left, remaining[key])
                if take > 0:
                    remaining[key] = EXACT.subtract(remaining[key], take)
                    allocation[key] = text(take)
                    left = EXACT.subtract(left, take)
            before = grant.available
            grant.available = EXACT.subtract(grant.available, amount)
            used.append((grant, amount))
            detail: dict[str, Any] = {
                "grant": grant.id, "key": grant.key, "priority": grant.priority,
                "expires": grant.expires.isoformat() if grant.expires else None,
                "balance_before": text(before), "balance_after": text(grant.available),
                "allocation": allocation}
            if days < cycle_days:
                detail["valid_days"] = {"days": days, "of_days": cycle_days}
            line = Line(kind="credit", description=grant.name, amount=-amount,
                        quantity=Decimal(1), unit_price=-amount, usage_period=doc.period,
                        chargeable_units=Decimal(1), detail=detail)
            if how.rates:
                line = replace(line, taxes=line_taxes(line.amount, how, doc.currency))
            lines.append(line)
        if not lines:
            return doc, used
        return replace(doc, lines=(*doc.lines, *lines)), used
