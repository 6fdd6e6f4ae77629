"""A cycle's invoice lines, in the documented order of application:

usage (less an entitlement's included units) -> charge model (free threshold first) ->
minimums (each charge's minimum or maximum, then the product's minimum spend) ->
discounts -> credits (prepaid grants, `billing_core.credits.wallet`) -> taxes (per line).

Line order on the invoice: the base fee, each charge (catalog order) followed by its
minimum true-up or maximum cap, the product's minimum spend, adjustments for earlier
periods, the discounts, the credits; taxes are shown per rate under the lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from billing_core.catalog.models import Charge, Meter, Product
from billing_core.credits.entitlements import EntitlementCycle
from billing_core.cycles import BaseFeeShare
from billing_core.documents.model import Line
from billing_core.money import EXACT, ratio, round_money
from billing_core.pricing.charges import price_charge
from billing_core.pricing.minimums import cap, true_up
from billing_core.pricing.taxes import TaxTreatment, line_taxes
from billing_core.pricing.usage import ZERO, ChargeUsage, text


def base_fee_line(product: Product, share: BaseFeeShare, currency: str, period: str) -> Line:
    """The base fee of the interval that starts (for this subscription) in this cycle."""
    amount = product.base_price
    detail: dict[str, Any] = {"interval": product.base_interval,
                              "from": share.interval.start.isoformat(),
                              "to": share.interval.end.isoformat()}
    if share.prorated:
        amount = ratio(EXACT.multiply(product.base_price, Decimal(share.days)), share.of_days)
        detail["proration"] = {"days": share.days, "of_days": share.of_days,
                               "from": share.active_start.isoformat(),
                               "to": share.active_end.isoformat()}
    plain = product.base_interval == "month" and not share.prorated and \
        share.interval.start.day == 1
    return Line(kind="base_fee", description=f"{product.name} — base fee",
                amount=round_money(amount, currency), quantity=Decimal(1),
                unit_price=product.base_price, usage_period=period,
                chargeable_units=Decimal(1), detail=None if plain else detail)


def after_entitlement(usage: ChargeUsage, entitlement: EntitlementCycle | None
                      ) -> ChargeUsage:
    """The usage left for the charge once the entitlement's units are used."""
    if entitlement is None or entitlement.covered == 0:
        return usage
    return replace(usage, quantity=EXACT.subtract(usage.quantity, entitlement.covered))


def usage_line(charge: Charge, meter: Meter, usage: ChargeUsage, currency: str,
               period: str, entitlement: EntitlementCycle | None = None) -> Line:
    priced = price_charge(charge, after_entitlement(usage, entitlement), currency)
    detail = dict(priced.priced.detail)
    if entitlement is not None:
        detail["entitlement"] = entitlement.as_detail()
    return Line(kind="usage", description=meter.name, meter=meter.key, usage_period=period,
                unit=meter.unit, quantity=usage.quantity, free_units=priced.free_units,
                chargeable_units=priced.chargeable_units,
                unit_price=priced.priced.unit_price if priced.priced.unit_price is not None
                else ZERO, amount=priced.amount, detail=detail or None)


@dataclass(frozen=True)
class CycleShare:
    """The active days of the cycle, for prorating minimums."""

    days: int
    of_days: int
    prorate: bool


def bounds(charge: Charge, amount: Decimal, currency: str, share: CycleShare
           ) -> tuple[str, Decimal, dict[str, object]] | None:
    """The charge's minimum true-up or maximum cap for `amount`: (kind, amount, detail)."""
    topped = true_up(amount, charge.minimum_amount, share.days, share.of_days,
                     share.prorate, currency)
    if topped:
        return ("minimum", *topped)
    capped = cap(amount, charge.maximum_amount, share.days, share.of_days, share.prorate,
                 currency)
    return ("maximum", *capped) if capped else None


def charge_total(charge: Charge, usage: ChargeUsage, currency: str,
                 share: CycleShare, covered: Decimal = ZERO) -> Decimal:
    """What one charge bills for a cycle: its rounded amount (of the usage not `covered`
    by an entitlement) with its minimum true-up or maximum cap."""
    if covered:
        usage = replace(usage, quantity=EXACT.subtract(usage.quantity, covered))
    amount = price_charge(charge, usage, currency).amount
    bound = bounds(charge, amount, currency, share)
    return EXACT.add(amount, bound[1]) if bound else amount


def charge_lines(product: Product, meters: Mapping[str, Meter],
                 usage: Mapping[str, ChargeUsage], currency: str, period: str,
                 share: CycleShare,
                 entitlements: Mapping[str, EntitlementCycle] | None = None) -> list[Line]:
    """Each charge's line (its usage first drawn from an entitlement) and minimum
    true-up, then the product's minimum spend."""
    lines: list[Line] = []
    spent = ZERO
    for charge in product.charges:
        meter = meters[charge.meter]
        line = usage_line(charge, meter, usage.get(charge.meter, ChargeUsage(ZERO)), currency,
                          period, (entitlements or {}).get(charge.meter))
        lines.append(line)
        spent = EXACT.add(spent, line.amount)
        bound = bounds(charge, line.amount, currency, share)
        if bound:
            kind, amount, detail = bound
            label = "Minimum" if kind == "minimum" else "Maximum"
            lines.append(Line(kind=kind, description=f"{label} for {meter.name}",
                              amount=amount, quantity=Decimal(1), unit_price=amount,
                              meter=charge.meter, usage_period=period,
                              chargeable_units=Decimal(1),
                              detail={"scope": "charge", "name": meter.name, **detail}))
            spent = EXACT.add(spent, amount)
    topped = true_up(spent, product.minimum_spend, share.days, share.of_days, share.prorate,
                     currency)
    if topped:
        amount, detail = topped
        lines.append(Line(kind="minimum", description=f"Minimum spend, {product.name}",
                          amount=amount, quantity=Decimal(1), unit_price=amount,
                          usage_period=period, chargeable_units=Decimal(1),
                          detail={"scope": "product", **detail}))
    return lines


def with_taxes(lines: list[Line], how: TaxTreatment, currency: str) -> list[Line]:
    """Every line with its taxes (none when no rate applies)."""
    if not how.rates:
        return lines
    return [replace(line, taxes=line_taxes(line.amount, how, currency)) for line in lines]


def adjustment_detail(billed: Decimal, current: Decimal, billed_amount: Decimal,
                      current_amount: Decimal) -> dict[str, Any]:
    return {"billed_quantity": text(billed), "current_quantity": text(current),
            "billed_amount": text(billed_amount), "current_amount": text(current_amount)}
