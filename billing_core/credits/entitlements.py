"""Usage entitlements: units of a meter included in each cycle.

A cycle's balance is its `units` plus what rolled over from the cycle before. Usage draws
from the balance first (never more than the usage, never below zero); only the rest is
priced by the charge, after its free threshold. Of what is left at the end of the cycle,
`rollover_percent` (at most `max_rollover_units`) moves to the next cycle, the rest
expires. Rolled-over units roll over again only as part of a cycle's leftover, so the
cap bounds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing_core.catalog.credits import Entitlement
from billing_core.money import EXACT, percent_of

ZERO = Decimal(0)


@dataclass(frozen=True)
class EntitlementCycle:
    """One cycle of one entitlement: what it grants and what the usage took."""

    meter: str
    units: Decimal
    rollover_in: Decimal
    usage: Decimal
    rollover_percent: Decimal = ZERO
    max_rollover_units: Decimal | None = None

    @property
    def balance(self) -> Decimal:
        return EXACT.add(self.units, self.rollover_in)

    @property
    def covered(self) -> Decimal:
        return max(ZERO, min(self.usage, self.balance))

    @property
    def left(self) -> Decimal:
        return EXACT.subtract(self.balance, self.covered)

    @property
    def rollover_out(self) -> Decimal:
        if not self.rollover_percent:
            return ZERO
        rolled = percent_of(self.left, self.rollover_percent)
        if self.max_rollover_units is not None:
            rolled = min(rolled, self.max_rollover_units)
        return rolled

    @property
    def expired(self) -> Decimal:
        return EXACT.subtract(self.left, self.rollover_out)

    def as_detail(self) -> dict[str, str]:
        from billing_core.pricing.usage import text

        return {"units": text(self.units), "rollover_in": text(self.rollover_in),
                "balance": text(self.balance), "covered": text(self.covered),
                "left": text(self.left), "rollover_out": text(self.rollover_out)}


def entitlement_cycle(entitlement: Entitlement, rollover_in: Decimal, usage: Decimal
                      ) -> EntitlementCycle:
    return EntitlementCycle(entitlement.meter, entitlement.units, rollover_in, usage,
                            entitlement.rollover_percent, entitlement.max_rollover_units)
