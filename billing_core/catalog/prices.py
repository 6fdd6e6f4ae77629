"""How a charge prices its meter's quantity: one model per pricing scheme.

A charge names its model under `price` (`model: package`, `graduated`, `volume`,
`percentage`, `per_unit`); `price_per_unit` on the charge is the short form of
`{model: per_unit, unit_price: ...}`. The arithmetic lives in `billing_core.pricing`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, model_validator

from billing_core.catalog.fields import Amount, Percent, PositiveAmount, problem, whole

PRICE_MODELS = ("per_unit", "package", "graduated", "volume", "percentage")
MAX_TIERS = 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerUnitPrice(_Model):
    """Every chargeable unit at one price."""

    model: Literal["per_unit"] = "per_unit"
    unit_price: Amount


class PackagePrice(_Model):
    """Units sold in packages: a started package is a whole package (rounds up)."""

    model: Literal["package"] = "package"
    package_size: PositiveAmount
    package_price: Amount


class Tier(_Model):
    """Units up to `up_to` (inclusive; null: no limit), their unit price, and a flat fee
    charged once when the tier is reached."""

    up_to: Amount | None
    unit_price: Amount = Decimal(0)
    flat_fee: Amount = Decimal(0)


def _check_tiers(tiers: tuple[Tier, ...]) -> None:
    if not tiers:
        raise problem("tiers", "at least one tier is needed")
    if len(tiers) > MAX_TIERS:
        raise problem("tiers", f"at most {MAX_TIERS} tiers, got {len(tiers)}")
    previous: Decimal | None = None
    for i, tier in enumerate(tiers):
        if tier.up_to is None:
            continue
        if tier.up_to <= 0:
            raise problem(f"tiers[{i}].up_to", f"must be greater than 0, got "
                                               f"{format(tier.up_to, 'f')}")
        if previous is not None and tier.up_to <= previous:
            raise problem(f"tiers[{i}].up_to", f"must be greater than the previous tier's "
                                               f"{format(previous, 'f')}")
        previous = tier.up_to
    for i, tier in enumerate(tiers[:-1]):
        if tier.up_to is None:
            raise problem(f"tiers[{i}].up_to", "only the last tier may be open-ended "
                                               "(up_to: null)")
    if tiers[-1].up_to is not None:
        raise problem(f"tiers[{len(tiers) - 1}].up_to",
                      "the last tier must be open-ended (up_to: null), so every quantity "
                      "has a price")


class GraduatedPrice(_Model):
    """Each tier prices the units inside it (1-100 at the first price, 101-1000 at the
    second...); a tier's flat fee is charged once the quantity reaches the tier."""

    model: Literal["graduated"] = "graduated"
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _tiers(self) -> GraduatedPrice:
        _check_tiers(self.tiers)
        return self


class VolumePrice(_Model):
    """The tier the whole quantity falls in prices every unit (plus its flat fee)."""

    model: Literal["volume"] = "volume"
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _tiers(self) -> VolumePrice:
        _check_tiers(self.tiers)
        return self


class PercentagePrice(_Model):
    """A rate in percent of the quantity (a sum of amounts) plus a fixed fee per event.

    Free allowance as in Lago: the first `free_events` events and the first `free_units`
    of amount (whichever is used up first) pay neither the rate nor the fee; the event
    that crosses `free_units` pays the rate on its part above it, and its fee."""

    model: Literal["percentage"] = "percentage"
    rate: Percent
    fixed_fee: Amount = Decimal(0)
    free_units: Amount = Decimal(0)
    free_events: Annotated[int, whole(0, 10**9)] = 0


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        found = value.get("model")
        return found if isinstance(found, str) else None
    return getattr(value, "model", None)


Price = Annotated[
    Annotated[PerUnitPrice, Tag("per_unit")] | Annotated[PackagePrice, Tag("package")]
    | Annotated[GraduatedPrice, Tag("graduated")] | Annotated[VolumePrice, Tag("volume")]
    | Annotated[PercentagePrice, Tag("percentage")],
    Discriminator(_tag, custom_error_type="price_model",
                  custom_error_message="unknown price model")]
AnyPrice = PerUnitPrice | PackagePrice | GraduatedPrice | VolumePrice | PercentagePrice
