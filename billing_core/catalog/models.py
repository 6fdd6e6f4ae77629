"""The catalog as typed, immutable pydantic models.

Unknown fields are refused everywhere, so a typo never passes silently. Cross-references
between sections (a charge's meter, a subscription's customer) are checked in
`billing_core.catalog.validation`, which reports every problem with its place.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, model_validator

from billing_core.catalog.fields import (
    Address,
    Amount,
    Currency,
    Day,
    Description,
    Email,
    EventName,
    Id,
    Key,
    Name,
    OptionalEmail,
    PropertyKey,
    ShortText,
    problem,
    shown,
    whole,
)

AGGREGATIONS = ("count", "sum", "max", "last", "unique_count")
NEEDS_PROPERTY = ("sum", "max", "last", "unique_count")
NUMERIC_AGGREGATIONS = ("sum", "max", "last")
OPERATORS = (
    "equals", "not_equals", "greater_than", "greater_than_or_equals",
    "less_than", "less_than_or_equals", "contains", "does_not_contain",
)
NUMERIC_OPERATORS = ("greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals")
STRING_OPERATORS = ("contains", "does_not_contain")
MAX_CHARGES_PER_PRODUCT = 10
MAX_FILTER_DEPTH = 8
LATE_USAGE_POLICIES = ("next_invoice", "credit_note_and_reissue")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_of(choices: tuple[str, ...], what: str | None = None) -> BeforeValidator:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            if what:
                raise ValueError(f"unknown {what} {shown(value)} (one of: "
                                 f"{', '.join(choices)})")
            raise ValueError(f"must be one of {', '.join(choices)}, got {shown(value)}")
        return value
    return BeforeValidator(check)


def _at_most(count: int, what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) > count:
            raise ValueError(f"at most {count} {what}, got {len(value)}")
        return value
    return BeforeValidator(check)


# --- meters -----------------------------------------------------------------------------

class Condition(Model):
    key: PropertyKey
    operator: Annotated[str, _one_of(OPERATORS, "operator")]
    value: Any

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Condition:
        value = self.value
        if value is None:
            raise problem("value", "required")
        if self.operator in NUMERIC_OPERATORS:
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise problem("value", f"operator {self.operator!r} needs a number, "
                                       f"got {shown(value)}")
        elif self.operator in STRING_OPERATORS:
            if not isinstance(value, str):
                raise problem("value", f"operator {self.operator!r} needs a string, "
                                       f"got {shown(value)}")
        elif not isinstance(value, str | int | Decimal | bool):
            raise problem("value", f"must be a string, number or boolean, got {shown(value)}")
        if isinstance(value, Decimal) and not value.is_finite():
            raise problem("value", f"must be a finite number, got {shown(value)}")
        if isinstance(value, str) and "\x00" in value:
            raise problem("value", "contains a NUL character")
        return self


class Filter(Model):
    logic: Annotated[str, _one_of(("and", "or"))] = "and"
    conditions: tuple[Condition, ...] = ()
    groups: tuple[Filter, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Filter:
        if not self.conditions and not self.groups:
            raise problem("conditions", "a filter needs at least one condition or group")
        return self

    def depth(self) -> int:
        return 1 + max((g.depth() for g in self.groups), default=0)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python")


class Meter(Model):
    key: Key
    name: Name
    description: Description = ""
    event_name: EventName
    aggregation: Annotated[str, _one_of(AGGREGATIONS)]
    over_property: PropertyKey | None = None
    unit: ShortText = ""
    filter: Filter | None = None

    @model_validator(mode="after")
    def _property_fits_aggregation(self) -> Meter:
        if self.aggregation in NEEDS_PROPERTY and self.over_property is None:
            raise problem("over_property", f"required for aggregation {self.aggregation!r}")
        if self.aggregation == "count" and self.over_property is not None:
            raise problem("over_property", "not used by aggregation 'count'; remove it")
        if self.filter is not None and self.filter.depth() > MAX_FILTER_DEPTH:
            raise problem("filter", f"filters nest at most {MAX_FILTER_DEPTH} levels")
        return self


# --- products --------------------------------------------------------------------------

class Charge(Model):
    meter: Key
    price_per_unit: Amount
    free_threshold: Amount = Decimal(0)


class Product(Model):
    key: Key
    name: Name
    description: Description = ""
    base_price: Amount = Decimal(0)
    charges: Annotated[tuple[Charge, ...], _at_most(MAX_CHARGES_PER_PRODUCT,
                                                     "charges per product")] = ()

    @model_validator(mode="after")
    def _one_charge_per_meter(self) -> Product:
        seen: dict[str, int] = {}
        for i, charge in enumerate(self.charges):
            if charge.meter in seen:
                raise problem(f"charges[{i}].meter",
                              f"duplicate charge for meter {charge.meter!r} "
                              f"(first at charges[{seen[charge.meter]}])")
            seen[charge.meter] = i
        return self


# --- parties and subscriptions ---------------------------------------------------------

class Seller(Model):
    """Who issues the invoices (shown in their header)."""

    name: Name = "Billflow"
    email: OptionalEmail = ""
    address: Address = ""


class Customer(Model):
    id: Id
    name: Name
    email: Email
    address: Address = ""
    payment_terms_days: Annotated[int, whole(0, 365)] | None = None


class Subscription(Model):
    id: Id
    customer: Id
    product: Key
    start: Day
    end: Day | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> Subscription:
        if self.end is not None and self.end <= self.start:
            raise problem("end", f"must be after start {self.start.isoformat()}")
        return self


# --- settings --------------------------------------------------------------------------

def _number_format(value: Any) -> str:
    """A document number format: literal text with {year} and {seq} (e.g. {seq:06d})."""
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {shown(value)}")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        sample = value.format(year=2026, seq=7)
    except (ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"{shown(value)} is not a valid number format: {exc}; use {{year}} "
                         f"and {{seq}}, e.g. 'INV-{{year}}-{{seq:06d}}'") from None
    if sorted(set(fields)) != ["seq", "year"]:
        raise ValueError(f"{shown(value)} must use exactly the fields {{year}} and {{seq}} "
                         f"(numbers restart every year), e.g. 'INV-{{year}}-{{seq:06d}}'")
    if not all(ch.isalnum() or ch in "-_." for ch in sample) or len(sample) > 40:
        raise ValueError(f"{shown(value)} gives {sample!r}: a number may hold only letters, "
                         f"digits, '-', '_' and '.', at most 40 characters")
    return value


NumberFormat = Annotated[str, BeforeValidator(_number_format)]


class Settings(Model):
    grace_period_days: Annotated[int, whole(0, 90)] = 3
    payment_terms_days: Annotated[int, whole(0, 365)] = 30
    late_usage: Annotated[str, _one_of(LATE_USAGE_POLICIES)] = "next_invoice"
    late_usage_lookback_periods: Annotated[int, whole(0, 24)] = 2
    invoice_number_format: NumberFormat = "INV-{year}-{seq:06d}"
    credit_note_number_format: NumberFormat = "CN-{year}-{seq:06d}"

    @model_validator(mode="after")
    def _distinct_series(self) -> Settings:
        sample = {"year": 2026, "seq": 1}
        if self.invoice_number_format.format(**sample) == \
                self.credit_note_number_format.format(**sample):
            raise problem("credit_note_number_format",
                          "must differ from invoice_number_format (numbers must be unique)")
        return self


# --- the catalog -----------------------------------------------------------------------

class Catalog(Model):
    currency: Currency
    seller: Seller = Seller()
    settings: Settings = Settings()
    meters: tuple[Meter, ...] = ()
    products: tuple[Product, ...] = ()
    customers: tuple[Customer, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    _meters: dict[str, Meter] = PrivateAttr(default_factory=dict)
    _products: dict[str, Product] = PrivateAttr(default_factory=dict)
    _customers: dict[str, Customer] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._meters = {m.key: m for m in self.meters}
        self._products = {p.key: p for p in self.products}
        self._customers = {c.id: c for c in self.customers}

    def meter(self, key: str) -> Meter:
        return self._meters[key]

    def product(self, key: str) -> Product:
        return self._products[key]

    def customer(self, customer_id: str) -> Customer:
        return self._customers[customer_id]

    @property
    def meters_by_key(self) -> Mapping[str, Meter]:
        return self._meters

    def payment_terms(self, customer_id: str) -> int:
        """Days from issue to due date: the customer's own terms, else the settings'."""
        customer = self._customers.get(customer_id)
        own = customer.payment_terms_days if customer else None
        return self.settings.payment_terms_days if own is None else own
