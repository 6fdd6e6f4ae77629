"""The catalog as typed, immutable pydantic models.

Unknown fields are refused everywhere, so a typo never passes silently. Cross-references
between sections (a charge's meter, a subscription's customer) are checked in
`billing_core.catalog.validation`, which reports every problem with its place.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, model_validator

from billing_core.catalog.credits import AlertRule, Entitlement, RecurringCredit
from billing_core.catalog.fields import (
    TAX_ID_RE,
    Address,
    Amount,
    Country,
    Currency,
    Day,
    Description,
    Email,
    EventName,
    Flag,
    Id,
    Key,
    LocaleName,
    Name,
    NonEmptyShortText,
    OptionalEmail,
    Percent,
    PropertyKey,
    Region,
    ShortText,
    Timezone,
    _pattern,
    problem,
    shown,
    whole,
)
from billing_core.catalog.prices import AnyPrice, PercentagePrice, PerUnitPrice, Price

AGGREGATIONS = ("count", "sum", "max", "min", "avg", "last", "unique_count", "weighted_sum")
NEEDS_PROPERTY = ("sum", "max", "min", "avg", "last", "unique_count", "weighted_sum")
NUMERIC_AGGREGATIONS = ("sum", "max", "min", "avg", "last", "weighted_sum")
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
    """Conditions and nested groups joined by `logic`; `negate` matches what the group
    does not (an event lacking a property the group tests matches the negation)."""

    logic: Annotated[str, _one_of(("and", "or"))] = "and"
    negate: Flag = False
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
    carry_over: Flag = False    # weighted_sum: the level carries over from earlier cycles

    @model_validator(mode="after")
    def _property_fits_aggregation(self) -> Meter:
        if self.aggregation in NEEDS_PROPERTY and self.over_property is None:
            raise problem("over_property", f"required for aggregation {self.aggregation!r}")
        if self.aggregation == "count" and self.over_property is not None:
            raise problem("over_property", "not used by aggregation 'count'; remove it")
        if self.carry_over and self.aggregation != "weighted_sum":
            raise problem("carry_over", "only used by aggregation 'weighted_sum'; remove it")
        if self.filter is not None and self.filter.depth() > MAX_FILTER_DEPTH:
            raise problem("filter", f"filters nest at most {MAX_FILTER_DEPTH} levels")
        return self


# --- products --------------------------------------------------------------------------

BASE_INTERVALS = ("month", "quarter", "year")
PRORATIONS = ("none", "daily")


class Charge(Model):
    """One meter's price on a product. `price_per_unit` is the short form of
    `price: {model: per_unit, unit_price: ...}`; exactly one of the two is given."""

    meter: Key
    price_per_unit: Amount | None = None
    price: Price | None = None
    free_threshold: Amount = Decimal(0)
    minimum_amount: Amount | None = None
    maximum_amount: Amount | None = None

    @model_validator(mode="after")
    def _one_price(self) -> Charge:
        if self.price is None and self.price_per_unit is None:
            raise problem("price", "required: give `price_per_unit` or `price` (a model: "
                                   "per_unit, package, graduated, volume, percentage)")
        if self.price is not None and self.price_per_unit is not None:
            raise problem("price_per_unit", "give either `price_per_unit` or `price`, not "
                                            "both")
        if isinstance(self.price, PercentagePrice) and self.free_threshold and (
                self.price.free_units or self.price.free_events):
            raise problem("free_threshold", "a percentage price has its own free_units and "
                                            "free_events; use those, not free_threshold")
        if self.minimum_amount is not None and self.maximum_amount is not None and \
                self.maximum_amount < self.minimum_amount:
            raise problem("maximum_amount", f"must not be below minimum_amount "
                                            f"{format(self.minimum_amount, 'f')}")
        return self

    @property
    def pricing(self) -> AnyPrice:
        """The price model (the short form as a per-unit price)."""
        if self.price is not None:
            return self.price
        assert self.price_per_unit is not None
        return PerUnitPrice(unit_price=self.price_per_unit)


def _one_per_meter(items: Sequence[Any], field: str, what: str) -> None:
    """Refuse a second item (charge, entitlement) for the same meter, naming both."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.meter in seen:
            raise problem(f"{field}[{i}].meter", f"duplicate {what} for meter {item.meter!r} "
                                                 f"(first at {field}[{seen[item.meter]}])")
        seen[item.meter] = i


class Product(Model):
    """A plan. Several entries may share a key with different `effective_from` dates:
    the version in effect on a cycle's first day prices the whole cycle."""

    key: Key
    name: Name
    description: Description = ""
    effective_from: Day | None = None
    currency: Currency | None = None
    base_price: Amount = Decimal(0)
    base_interval: Annotated[str, _one_of(BASE_INTERVALS)] = "month"
    proration: Annotated[str, _one_of(PRORATIONS)] = "none"
    minimum_spend: Amount | None = None
    charges: Annotated[tuple[Charge, ...], _at_most(MAX_CHARGES_PER_PRODUCT,
                                                     "charges per product")] = ()

    @model_validator(mode="after")
    def _one_charge_per_meter(self) -> Product:
        _one_per_meter(self.charges, "charges", "charge")
        return self

    @property
    def identity(self) -> str:
        """The key, with the version date when there is one ('pro@2027-01-01')."""
        return f"{self.key}@{self.effective_from.isoformat()}" if self.effective_from \
            else self.key


# --- parties and subscriptions ---------------------------------------------------------

EINVOICE_FORMATS = ("factur-x", "none")
EInvoice = Annotated[str, _one_of(EINVOICE_FORMATS)]
TaxId = Annotated[str, _pattern(TAX_ID_RE, "tax id (letters, digits, spaces, . - /; at most "
                                           "32 characters)")]


class PostalAddress(Model):
    """The parts of an address that e-invoices need (the free-text `address` is printed)."""

    country: Country | None = None
    city: ShortText = ""
    postal_code: ShortText = ""


class Seller(PostalAddress):
    """Who issues the invoices (shown in their header; From of their e-mails)."""

    name: Name = "Billflow"
    email: OptionalEmail = ""
    reply_to: OptionalEmail = ""
    address: Address = ""
    tax_id: TaxId | None = None
    einvoice: EInvoice = "none"


class Customer(PostalAddress):
    id: Id
    name: Name
    email: Email
    billing_emails: Annotated[tuple[Email, ...], _at_most(10, "billing e-mail addresses")] = ()
    cc: Annotated[tuple[Email, ...], _at_most(10, "cc addresses")] = ()
    address: Address = ""
    region: Region | None = None           # ISO 3166-2 subdivision (NY, QC): regional taxes
    payment_terms_days: Annotated[int, whole(0, 365)] | None = None
    tax_id: TaxId | None = None
    tax_exempt: Flag = False
    timezone: Timezone | None = None       # None: settings.timezone
    locale: LocaleName | None = None       # None: settings.locale
    einvoice: EInvoice | None = None       # None: the seller's choice

    def recipients(self) -> tuple[str, ...]:
        """To: the customer's e-mail and its billing e-mails, each once."""
        return tuple(dict.fromkeys((self.email, *self.billing_emails)))


DISCOUNT_DURATIONS = ("once", "repeating", "forever")
BASE_FEE = "base_fee"


class Discount(Model):
    """A coupon on a subscription: `percent_off` or `amount_off` (in the invoice's
    currency), for the first cycle (`once`), the first `cycles` cycles (`repeating`) or
    every cycle (`forever`), counted from `start` (default: the subscription's start);
    `applies_to` limits it to some charges (meter keys, and `base_fee`)."""

    name: Name = "Discount"
    percent_off: Percent | None = None
    amount_off: Amount | None = None
    duration: Annotated[str, _one_of(DISCOUNT_DURATIONS)] = "once"
    cycles: Annotated[int, whole(1, 1200)] | None = None
    start: Day | None = None
    applies_to: Annotated[tuple[Key, ...], _at_most(MAX_CHARGES_PER_PRODUCT + 1,
                                                     "charges")] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Discount:
        if (self.percent_off is None) == (self.amount_off is None):
            raise problem("percent_off", "give exactly one of percent_off and amount_off")
        if self.percent_off is not None and self.percent_off <= 0:
            raise problem("percent_off", "must be greater than 0")
        if self.amount_off is not None and self.amount_off <= 0:
            raise problem("amount_off", "must be greater than 0")
        if self.duration == "repeating" and self.cycles is None:
            raise problem("cycles", "required for duration 'repeating' (how many cycles)")
        if self.duration != "repeating" and self.cycles is not None:
            raise problem("cycles", f"only used by duration 'repeating' (this one is "
                                    f"{self.duration!r}); remove it")
        return self


class Subscription(Model):
    id: Id
    customer: Id
    product: Key
    start: Day
    end: Day | None = None
    billing_anchor: Annotated[str, _one_of(("calendar", "anniversary"))] = "calendar"
    discounts: Annotated[tuple[Discount, ...], _at_most(10, "discounts")] = ()
    entitlements: Annotated[tuple[Entitlement, ...], _at_most(MAX_CHARGES_PER_PRODUCT,
                                                              "entitlements")] = ()
    credits: Annotated[tuple[RecurringCredit, ...], _at_most(10, "recurring credits")] = ()

    @model_validator(mode="after")
    def _end_after_start(self) -> Subscription:
        if self.end is not None and self.end <= self.start:
            raise problem("end", f"must be after start {self.start.isoformat()}")
        return self

    @model_validator(mode="after")
    def _one_entitlement_per_meter(self) -> Subscription:
        _one_per_meter(self.entitlements, "entitlements", "entitlement")
        return self


# --- taxes -----------------------------------------------------------------------------

class TaxRate(Model):
    """A rate for customers in `country` (and only `region` of it when given). Every
    rate that matches a customer applies (a country rate and a regional one stack)."""

    country: Country
    region: Region | None = None
    rate: Percent
    name: NonEmptyShortText = "VAT"


class Taxes(Model):
    prices: Annotated[str, _one_of(("exclusive", "inclusive"))] = "exclusive"
    reverse_charge: Flag = True
    rates: Annotated[tuple[TaxRate, ...], _at_most(500, "tax rates")] = ()

    @model_validator(mode="after")
    def _distinct(self) -> Taxes:
        seen: dict[tuple[str, str | None, str], int] = {}
        for i, rate in enumerate(self.rates):
            key = (rate.country, rate.region, rate.name)
            if key in seen:
                where = rate.country + (f"-{rate.region}" if rate.region else "")
                raise problem(f"rates[{i}]", f"duplicate rate {rate.name!r} for {where} "
                                             f"(first at rates[{seen[key]}])")
            seen[key] = i
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
    send_documents: Flag = True
    require_approval: Flag = False
    approval_flag_above: Amount | None = None
    approval_timeout_hours: Annotated[int, whole(1, 24 * 30)] = 72
    timezone: Timezone = "UTC"             # customers without their own
    locale: LocaleName = "en_US"           # customers without their own

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
    taxes: Taxes = Taxes()
    meters: tuple[Meter, ...] = ()
    products: tuple[Product, ...] = ()
    customers: tuple[Customer, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    alerts: Annotated[tuple[AlertRule, ...], _at_most(200, "alert rules")] = ()

    _meters: dict[str, Meter] = PrivateAttr(default_factory=dict)
    _products: dict[str, list[Product]] = PrivateAttr(default_factory=dict)
    _customers: dict[str, Customer] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._meters = {m.key: m for m in self.meters}
        versions: dict[str, list[Product]] = {}
        for product in self.products:
            versions.setdefault(product.key, []).append(product)
        self._products = {key: sorted(items, key=lambda p: p.effective_from or date.min)
                          for key, items in versions.items()}
        self._customers = {c.id: c for c in self.customers}

    def meter(self, key: str) -> Meter:
        return self._meters[key]

    def product(self, key: str, on: date | None = None) -> Product:
        """The version of product `key` in effect on day `on` (the first version when
        none is yet; the latest when `on` is None)."""
        versions = self._products[key]
        if on is None:
            return versions[-1]
        chosen = versions[0]
        for version in versions:
            if version.effective_from is None or version.effective_from <= on:
                chosen = version
        return chosen

    def product_versions(self, key: str) -> list[Product]:
        return list(self._products[key])

    def customer(self, customer_id: str) -> Customer:
        return self._customers[customer_id]

    @property
    def meters_by_key(self) -> Mapping[str, Meter]:
        return self._meters

    def currency_of(self, product: Product) -> str:
        return product.currency or self.currency

    def einvoice(self, customer_id: str) -> str:
        """'factur-x' or 'none' for a customer (its own choice, else the seller's)."""
        customer = self._customers.get(customer_id)
        own = customer.einvoice if customer else None
        return own or self.seller.einvoice

    def payment_terms(self, customer_id: str) -> int:
        """Days from issue to due date: the customer's own terms, else the settings'."""
        customer = self._customers.get(customer_id)
        own = customer.payment_terms_days if customer else None
        return self.settings.payment_terms_days if own is None else own

    def timezone(self, customer_id: str) -> str:
        customer = self._customers.get(customer_id)
        return (customer.timezone if customer else None) or self.settings.timezone

    def locale(self, customer_id: str) -> str:
        customer = self._customers.get(customer_id)
        return (customer.locale if customer else None) or self.settings.locale
