"""Credits in the catalog: usage entitlements and recurring credit grants of a
subscription, and alert rules. The ledger arithmetic lives in `billing_core.credits`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from billing_core.catalog.fields import (
    Amount,
    Currency,
    Key,
    Name,
    Percent,
    PositiveAmount,
    problem,
    shown,
    whole,
)

MAX_PRIORITY = 100
DEFAULT_PRIORITY = 50
ALERT_KINDS = ("usage", "spend", "balance")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _choice(choices: tuple[str, ...]) -> BeforeValidator:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {shown(value)}")
        return value
    return BeforeValidator(check)


class Entitlement(_Model):
    """Units of a meter included in every cycle: usage draws from them before the charge
    prices the rest. Unused units roll over (`rollover_percent` of them, at most
    `max_rollover_units`) into the next cycle only."""

    meter: Key
    units: PositiveAmount
    renew: Annotated[str, _choice(("cycle",))] = "cycle"
    rollover_percent: Percent = Decimal(0)
    max_rollover_units: Amount | None = None

    @model_validator(mode="after")
    def _cap_needs_rollover(self) -> Entitlement:
        if self.max_rollover_units is not None and not self.rollover_percent:
            raise problem("max_rollover_units", "only used with rollover_percent above 0")
        return self


class RecurringCredit(_Model):
    """A monetary credit granted every cycle (`amount` in the subscription's currency),
    usable for `expires_after_cycles` cycles (default 1: the cycle itself; null: until
    used)."""

    amount: PositiveAmount
    every: Annotated[str, _choice(("cycle",))] = "cycle"
    name: Name = "Included credit"
    priority: Annotated[int, whole(0, MAX_PRIORITY)] = DEFAULT_PRIORITY
    expires_after_cycles: Annotated[int, whole(1, 120)] | None = 1
    applies_to: tuple[Key, ...] = ()


class AlertRule(_Model):
    """A usage alert. `usage`: a meter's quantity in a customer's cycle reaches
    `threshold`; `spend`: the amount to date of a customer's open cycle (before tax)
    reaches `threshold`; `balance`: a monetary credit grant's remaining balance falls
    below `threshold`. Each fires at most once per cycle per customer (and grant)."""

    id: Key
    kind: Annotated[str, _choice(ALERT_KINDS)]
    threshold: Amount
    meter: Key | None = None
    currency: Currency | None = None
    customers: tuple[str, ...] = ()            # none: every customer
    name: Name | None = None
    email: bool = True                         # e-mail the customer's billing addresses
    webhook: str | None = None                 # also POST the alert as JSON here

    @model_validator(mode="after")
    def _fits_kind(self) -> AlertRule:
        if self.kind == "usage" and self.meter is None:
            raise problem("meter", "required for a usage alert")
        if self.kind != "usage" and self.meter is not None:
            raise problem("meter", f"only used by usage alerts (this one is {self.kind!r})")
        if self.webhook is not None and not (
                self.webhook.startswith(("http://", "https://")) and len(self.webhook) < 2000
                and not any(c.isspace() or ord(c) < 32 for c in self.webhook)):
            raise problem("webhook", f"must be an http:// or https:// URL, got "
                                     f"{shown(self.webhook)}")
        return self
