"""What pricing needs to know of one charge's usage in one cycle, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing_core.money import EXACT

ZERO = Decimal(0)


@dataclass(frozen=True)
class ChargeUsage:
    """A meter's measure in a cycle. `events` counts matching events; `free_amount` and
    `free_events` are the part of the usage inside a percentage price's free allowance
    (measured in event order by the metering SQL)."""

    quantity: Decimal
    events: int = 0
    free_amount: Decimal = ZERO
    free_events: int = 0


@dataclass(frozen=True)
class Priced:
    """A model's price for a number of chargeable units, exact (not yet rounded), with
    the breakdown shown on the invoice line (JSON-ready: decimals as strings)."""

    amount: Decimal
    unit_price: Decimal | None = None       # when one price applies to every unit
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Billed:
    """What issued documents billed of one charge for one period (sums of their lines):
    `events` and `amount` are None for documents issued before they were recorded."""

    quantity: Decimal = ZERO
    events: int | None = None
    amount: Decimal | None = None

    def plus(self, other: Billed) -> Billed:
        """The sum of two records (unknown stays unknown)."""
        return Billed(EXACT.add(self.quantity, other.quantity),
                      None if self.events is None or other.events is None
                      else self.events + other.events,
                      None if self.amount is None or other.amount is None
                      else EXACT.add(self.amount, other.amount))


def text(value: Decimal | int) -> str:
    """A decimal as plain text, never in exponent form."""
    from billing_core.money import normalize_quantity

    return format(normalize_quantity(Decimal(value)), "f")
