"""The pricing catalog: meters, products with charges, customers and subscriptions.

`parse_catalog` validates a whole document and lists every problem with its place
(``meters[1].over_property: required for aggregation 'sum'``); nothing is half-read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from billing_core.money import UnknownCurrency, minor_units, to_decimal

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

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_PROPERTY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CatalogError(ValueError):
    """An invalid catalog; `problems` lists each one as 'place: problem'."""

    def __init__(self, problems: list[str], source: str = "catalog") -> None:
        self.problems = problems
        self.source = source
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing applied:\n{listing}")


@dataclass(frozen=True)
class Condition:
    key: str
    operator: str
    value: str | int | Decimal | bool


@dataclass(frozen=True)
class Filter:
    logic: str = "and"
    conditions: tuple[Condition, ...] = ()
    groups: tuple[Filter, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "logic": self.logic,
            "conditions": [
                {"key": c.key, "operator": c.operator, "value": c.value}
                for c in self.conditions
            ],
            "groups": [g.to_dict() for g in self.groups],
        }


@dataclass(frozen=True)
class Meter:
    key: str
    name: str
    event_name: str
    aggregation: str
    unit: str = ""
    description: str = ""
    over_property: str | None = None
    filter: Filter | None = None


@dataclass(frozen=True)
class Charge:
    meter: str
    price_per_unit: Decimal
    free_threshold: Decimal = Decimal(0)


@dataclass(frozen=True)
class Product:
    key: str
    name: str
    base_price: Decimal = Decimal(0)
    description: str = ""
    charges: tuple[Charge, ...] = ()


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str
    address: str = ""


@dataclass(frozen=True)
class Subscription:
    id: str
    customer: str
    product: str
    start: date
    end: date | None = None


@dataclass(frozen=True)
class Seller:
    """Who issues the invoices (shown in their header)."""

    name: str = "Billflow"
    email: str = ""
    address: str = ""


@dataclass(frozen=True)
class Catalog:
    currency: str
    seller: Seller = Seller()
    meters: tuple[Meter, ...] = ()
    products: tuple[Product, ...] = ()
    customers: tuple[Customer, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    def meter(self, key: str) -> Meter:
        return next(m for m in self.meters if m.key == key)

    def product(self, key: str) -> Product:
        return next(p for p in self.products if p.key == key)


# --- YAML: floats are read as exact Decimals, never as binary floats ------------------

class _DecimalLoader(yaml.SafeLoader):
    pass


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node).replace("_", "")
    if text.lower() in (".nan", ".inf", "-.inf", "+.inf"):
        return text  # left as text: refused below as 'not a finite number'
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_catalog_file(path: str | Path) -> Catalog:
    """Read and validate a catalog YAML file; raises CatalogError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([f"cannot read file: {exc.strerror or exc}"], str(path)) from None
    try:
        document = yaml.load(text, Loader=_DecimalLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError([f"{where}invalid YAML: {problem}"], str(path)) from None
    return parse_catalog(document, source=str(path))


# --- validation ----------------------------------------------------------------------

class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, place: str, problem: str) -> None:
        self.items.append(f"{place}: {problem}")


def _check_keys(node: dict, allowed: set[str], place: str, problems: _Problems) -> None:
    for key in node:
        if key not in allowed:
            problems.add(f"{place}.{key}" if place else str(key),
                          f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _text(node: dict, key: str, place: str, problems: _Problems, *, required: bool = True,
          pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
    value = node.get(key)
    if value is None:
        if required:
            problems.add(f"{place}.{key}", "required")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{place}.{key}", f"must be a non-empty string, got {value!r}")
        return None
    if pattern is not None and not pattern.match(value):
        problems.add(f"{place}.{key}", f"{value!r} is not a valid {what}")
        return None
    return value


def _decimal(node: dict, key: str, place: str, problems: _Problems,
             default: Decimal | None = None) -> Decimal | None:
    if key not in node or node[key] is None:
        if default is None:
            problems.add(f"{place}.{key}", "required")
        return default
    value = node[key]
    try:
        result = to_decimal(value)
    except (TypeError, ValueError):
        problems.add(f"{place}.{key}", f"must be a decimal number, got {value!r}")
        return None
    if result < 0:
        problems.add(f"{place}.{key}", f"must not be negative, got {value!r}")
        return None
    return result


def _list(node: dict, key: str, problems: _Problems,
          prefix: str = "") -> Iterator[tuple[str, dict]]:
    """The mapping items of node[key] with their places; reports anything else."""
    where = f"{prefix}.{key}" if prefix else key
    items = node.get(key)
    if items is None:
        return
    if not isinstance(items, list):
        problems.add(where, f"must be a list, got {type(items).__name__}")
        return
    for i, item in enumerate(items):
        place = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.add(place, f"must be a mapping, got {item!r}")
            continue
        yield place, item


def _unique(seen: dict[str, str], value: str | None, place: str, problems: _Problems,
            what: str) -> None:
    if value is None:
        return
    if value in seen:
        problems.add(place, f"duplicate {what} {value!r} (first at {seen[value]})")
    else:
        seen[value] = place


def _parse_filter(node: Any, place: str, problems: _Problems, depth: int = 1) -> Filter | None:
    if not isinstance(node, dict):
        problems.add(place, f"must be a mapping with logic/conditions/groups, got {node!r}")
        return None
    if depth > MAX_FILTER_DEPTH:
        problems.add(place, f"filters nest at most {MAX_FILTER_DEPTH} levels")
        return None
    _check_keys(node, {"logic", "conditions", "groups"}, place, problems)
    logic = node.get("logic", "and")
    if logic not in ("and", "or"):
        problems.add(f"{place}.logic", f"must be 'and' or 'or', got {logic!r}")
    conditions = [c for cplace, cond in _list(node, "conditions", problems, place)
                  if (c := _parse_condition(cond, cplace, problems)) is not None]
    groups = [g for gplace, group in _list(node, "groups", problems, place)
              if (g := _parse_filter(group, gplace, problems, depth + 1)) is not None]
    if not node.get("conditions") and not node.get("groups"):
        problems.add(place, "needs at least one condition or group")
    return Filter(logic=logic, conditions=tuple(conditions), groups=tuple(groups))


def _parse_condition(cond: dict, place: str, problems: _Problems) -> Condition | None:
    _check_keys(cond, {"key", "operator", "value"}, place, problems)
    key = _text(cond, "key", place, problems, pattern=_PROPERTY_RE, what="property key")
    operator = cond.get("operator")
    ok = key is not None
    if operator not in OPERATORS:
        problems.add(f"{place}.operator",
                     f"unknown operator {operator!r} (one of: {', '.join(OPERATORS)})")
        ok = False
    if "value" not in cond or cond["value"] is None:
        problems.add(f"{place}.value", "required")
        return None
    value = cond["value"]
    if operator in NUMERIC_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            problems.add(f"{place}.value", f"operator {operator!r} needs a number, got {value!r}")
            return None
    elif operator in STRING_OPERATORS:
        if not isinstance(value, str):
            problems.add(f"{place}.value", f"operator {operator!r} needs a string, got {value!r}")
            return None
    elif not isinstance(value, str | int | Decimal | bool):
        problems.add(f"{place}.value", f"must be a string, number or boolean, got {value!r}")
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        problems.add(f"{place}.value", f"must be a finite number, got {value!r}")
        return None
    return Condition(key=key, operator=operator, value=value) if ok else None


def _parse_date(node: dict, key: str, place: str, problems: _Problems,
                required: bool) -> date | None:
    value = node.get(key)
    if value is None:
        if required:
            problems.add(f"{place}.{key}", "required")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(f"{place}.{key}", f"must be a date YYYY-MM-DD, got {value!r}")
    return None


def parse_catalog(document: Any, source: str = "catalog") -> Catalog:
    """Validate a parsed catalog document; raises CatalogError listing every problem."""
    problems = _Problems()
    if not isinstance(document, dict):
        raise CatalogError(["(top): must be a mapping with currency, meters, products, "
                            "customers and subscriptions"], source)
    _check_keys(document, {"currency", "seller", "meters", "products", "customers",
                           "subscriptions"}, "", problems)
    seller = Seller()
    if document.get("seller") is not None:
        node = document["seller"]
        if not isinstance(node, dict):
            problems.add("seller", "must be a mapping with name, email, address")
        else:
            _check_keys(node, {"name", "email", "address"}, "seller", problems)
            seller = Seller(
                name=_text(node, "name", "seller", problems) or "",
                email=_text(node, "email", "seller", problems, required=False,
                            pattern=_EMAIL_RE, what="email address") or "",
                address=_text(node, "address", "seller", problems, required=False) or "")

    currency = document.get("currency")
    if not isinstance(currency, str):
        problems.add("currency", "required: an ISO 4217 code such as USD")
        currency = None
    else:
        try:
            minor_units(currency)
        except UnknownCurrency:
            problems.add("currency", f"unknown ISO 4217 currency {currency!r}")
            currency = None

    meters: list[Meter] = []
    seen: dict[str, str] = {}
    for place, node in _list(document, "meters", problems):
        _check_keys(node, {"key", "name", "description", "event_name", "aggregation",
                           "over_property", "unit", "filter"}, place, problems)
        key = _text(node, "key", place, problems, pattern=_KEY_RE,
                    what="meter key (lowercase letters, digits, _; starts with a letter)")
        _unique(seen, key, f"{place}.key", problems, "meter key")
        name = _text(node, "name", place, problems)
        event_name = _text(node, "event_name", place, problems)
        description = _text(node, "description", place, problems, required=False) or ""
        unit = _text(node, "unit", place, problems, required=False) or ""
        aggregation = node.get("aggregation")
        if aggregation not in AGGREGATIONS:
            problems.add(f"{place}.aggregation",
                         f"must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
            aggregation = None
        over_property = node.get("over_property")
        if aggregation in NEEDS_PROPERTY and over_property is None:
            problems.add(f"{place}.over_property",
                         f"required for aggregation {aggregation!r}")
        elif aggregation == "count" and over_property is not None:
            problems.add(f"{place}.over_property", "not used by aggregation 'count'; remove it")
        elif over_property is not None:
            over_property = _text(node, "over_property", place, problems,
                                  pattern=_PROPERTY_RE, what="property key")
        flt = _parse_filter(node["filter"], f"{place}.filter", problems) \
            if node.get("filter") is not None else None
        if None not in (key, name, event_name, aggregation):
            meters.append(Meter(key=key, name=name, event_name=event_name,
                                aggregation=aggregation, unit=unit, description=description,
                                over_property=over_property, filter=flt))
    meter_keys = set(seen)

    products: list[Product] = []
    seen = {}
    for place, node in _list(document, "products", problems):
        _check_keys(node, {"key", "name", "description", "base_price", "charges"},
                    place, problems)
        key = _text(node, "key", place, problems, pattern=_KEY_RE, what="product key")
        _unique(seen, key, f"{place}.key", problems, "product key")
        name = _text(node, "name", place, problems)
        description = _text(node, "description", place, problems, required=False) or ""
        base_price = _decimal(node, "base_price", place, problems, default=Decimal(0))
        charges: list[Charge] = []
        if isinstance(node.get("charges"), list) and \
                len(node["charges"]) > MAX_CHARGES_PER_PRODUCT:
            problems.add(f"{place}.charges", f"at most {MAX_CHARGES_PER_PRODUCT} charges per "
                                             f"product, got {len(node['charges'])}")
        charge_meters: dict[str, str] = {}
        for cplace, charge in _list(node, "charges", problems, place):
            _check_keys(charge, {"meter", "price_per_unit", "free_threshold"}, cplace, problems)
            meter = _text(charge, "meter", cplace, problems)
            if meter is not None and meter not in meter_keys:
                problems.add(f"{cplace}.meter", f"unknown meter {meter!r}")
                meter = None
            _unique(charge_meters, meter, f"{cplace}.meter", problems, "charge for meter")
            price = _decimal(charge, "price_per_unit", cplace, problems)
            free = _decimal(charge, "free_threshold", cplace, problems, default=Decimal(0))
            if None not in (meter, price, free):
                charges.append(Charge(meter=meter, price_per_unit=price, free_threshold=free))
        if None not in (key, name, base_price):
            products.append(Product(key=key, name=name, base_price=base_price,
                                    description=description, charges=tuple(charges)))
    product_keys = set(seen)

    customers: list[Customer] = []
    seen = {}
    for place, node in _list(document, "customers", problems):
        _check_keys(node, {"id", "name", "email", "address"}, place, problems)
        cid = _text(node, "id", place, problems, pattern=_ID_RE, what="customer id")
        _unique(seen, cid, f"{place}.id", problems, "customer id")
        name = _text(node, "name", place, problems)
        email = _text(node, "email", place, problems, pattern=_EMAIL_RE, what="email address")
        address = _text(node, "address", place, problems, required=False) or ""
        if None not in (cid, name, email):
            customers.append(Customer(id=cid, name=name, email=email, address=address))
    customer_ids = set(seen)

    subscriptions: list[Subscription] = []
    sub_places: list[str] = []
    seen = {}
    for place, node in _list(document, "subscriptions", problems):
        _check_keys(node, {"id", "customer", "product", "start", "end"}, place, problems)
        sid = _text(node, "id", place, problems, pattern=_ID_RE, what="subscription id")
        _unique(seen, sid, f"{place}.id", problems, "subscription id")
        customer = _text(node, "customer", place, problems)
        if customer is not None and customer not in customer_ids:
            problems.add(f"{place}.customer", f"unknown customer {customer!r}")
            customer = None
        product = _text(node, "product", place, problems)
        if product is not None and product not in product_keys:
            problems.add(f"{place}.product", f"unknown product {product!r}")
            product = None
        start = _parse_date(node, "start", place, problems, required=True)
        end = _parse_date(node, "end", place, problems, required=False)
        if start and end and end <= start:
            problems.add(f"{place}.end", f"must be after start {start.isoformat()}")
            end = None
        if None not in (sid, customer, product, start):
            subscriptions.append(Subscription(id=sid, customer=customer, product=product,
                                              start=start, end=end))
            sub_places.append(place)

    products_by_key = {p.key: p for p in products}
    _check_overlaps(subscriptions, sub_places, products_by_key, problems)

    if problems.items:
        raise CatalogError(problems.items, source)
    return Catalog(currency=currency, seller=seller, meters=tuple(meters), products=tuple(products),
                   customers=tuple(customers), subscriptions=tuple(subscriptions))


def _check_overlaps(subscriptions: list[Subscription], places: list[str],
                    products: dict[str, Product], problems: _Problems) -> None:
    """A customer's events must not be billed twice: two subscriptions of one customer
    that overlap in time must not charge the same meter."""
    for i, a in enumerate(subscriptions):
        for j, b in enumerate(subscriptions[i + 1:], start=i + 1):
            if a.customer != b.customer or a.product not in products or b.product not in products:
                continue
            overlap = (b.end is None or a.start < b.end) and (a.end is None or b.start < a.end)
            shared = {c.meter for c in products[a.product].charges} & \
                     {c.meter for c in products[b.product].charges}
            if overlap and shared:
                problems.add(places[j],
                             f"overlaps {a.id} for customer {a.customer} and charges the same "
                             f"meter(s) {', '.join(sorted(shared))}: usage would be billed twice")
