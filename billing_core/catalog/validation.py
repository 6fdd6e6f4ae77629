"""Validating a catalog document and listing every problem with its place.

Each item of each section is validated on its own, so one bad meter does not hide the
problems of the others; cross-references (a charge's meter, a subscription's customer and
product, overlapping subscriptions) are then checked between the items that are valid.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from billing_core.catalog.credits import AlertRule
from billing_core.catalog.fields import shown
from billing_core.catalog.models import (
    BASE_FEE,
    Catalog,
    Customer,
    Meter,
    Product,
    Seller,
    Settings,
    Subscription,
    Taxes,
)
from billing_core.catalog.prices import (
    PRICE_MODELS,
    GraduatedPrice,
    PackagePrice,
    PercentagePrice,
    PerUnitPrice,
    VolumePrice,
)
from billing_core.catalog.yaml_loader import YamlProblem, load_yaml
from billing_core.money import minor_units, round_money

SECTIONS: dict[str, type[BaseModel]] = {
    "meters": Meter, "products": Product, "customers": Customer,
    "subscriptions": Subscription, "alerts": AlertRule,
}
PRICE_CLASSES: dict[str, type[BaseModel]] = {
    "per_unit": PerUnitPrice, "package": PackagePrice, "graduated": GraduatedPrice,
    "volume": VolumePrice, "percentage": PercentagePrice}
TOP_LEVEL = ("currency", "seller", "settings", "taxes", *SECTIONS)
_ID_FIELD = {"meters": "key", "products": "key", "customers": "id", "subscriptions": "id",
             "alerts": "id"}
_WHAT = {"meters": "meter key", "products": "product key", "customers": "customer id",
         "subscriptions": "subscription id", "alerts": "alert id"}


class CatalogError(ValueError):
    """An invalid catalog; `problems` lists each one as 'place: problem'."""

    def __init__(self, problems: list[str], source: str = "catalog") -> None:
        self.problems = problems
        self.source = source
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing applied:\n{listing}")


# --- pydantic errors as 'place: problem' ------------------------------------------------

def _place(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    previous: Any = None
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        if part in PRICE_CLASSES and previous == "price":
            current = PRICE_CLASSES[part]
        else:
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _unwrap_model(field.annotation)
        previous = part
    return current


def _without_tags(loc: Sequence[Any]) -> list[Any]:
    """The place without the price model pydantic adds after `price` (it is in the data
    already, as `model`)."""
    kept: list[Any] = []
    for part in loc:
        if part in PRICE_MODELS and kept and kept[-1] == "price":
            continue
        kept.append(part)
    return kept


def _message(error: Any, model: type[BaseModel]) -> tuple[list[Any], str]:
    loc = _without_tags(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "price_model":
        choices = ", ".join(PRICE_MODELS)
        if not isinstance(value, dict):
            return loc, f"must be a mapping with a `model` ({choices}), got {shown(value)}"
        if "model" not in value:
            return [*loc, "model"], f"required (one of: {choices})"
        return [*loc, "model"], f"unknown price model {shown(value['model'])} (one of: " \
                                f"{choices})"
    if kind == "catalog":
        loc.append(error["ctx"]["field"])
        return loc, error["msg"]
    if kind == "value_error":
        return loc, str(error["ctx"]["error"])
    if kind == "missing":
        return loc, "required"
    if kind == "extra_forbidden":
        owner = _model_at(model, list(error["loc"])[:-1])
        allowed = f" (allowed: {', '.join(owner.model_fields)})" if owner else ""
        return loc, f"unknown field{allowed}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, f"must be a mapping, got {shown(value)}"
    if kind in ("tuple_type", "list_type"):
        return loc, f"must be a list, got {shown(value)}"
    if kind == "string_type":
        return loc, f"must be text, got {shown(value)}"
    message = str(error["msg"])
    return loc, f"{message[:1].lower()}{message[1:]}, got {shown(value)}"


def model_problems(exc: ValidationError, prefix: str, model: type[BaseModel]) -> list[str]:
    """Each pydantic error as 'place: problem', the place starting with `prefix`."""
    problems = []
    for error in exc.errors(include_url=False):
        loc, message = _message(error, model)
        inner = _place(loc)
        if prefix and inner:
            place = f"{prefix}{inner}" if inner.startswith("[") else f"{prefix}.{inner}"
        else:
            place = prefix or inner or "(top)"
        problems.append(f"{place}: {message}")
    return problems


# --- the document -----------------------------------------------------------------------

class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, place: str, message: str) -> None:
        self.items.append(f"{place}: {message}")


def _validate(model: type[BaseModel], data: Any, place: str,
              problems: Problems) -> Any | None:
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        problems.items.extend(model_problems(exc, place, model))
        return None
    except RecursionError:
        problems.add(place, "nested too deeply")
        return None


def _section(document: dict[str, Any], name: str,
             problems: Problems) -> Iterator[tuple[str, Any]]:
    """(place, valid item) for each item of a section; problems for the others."""
    items = document.get(name)
    if items is None:
        return
    if not isinstance(items, list):
        problems.add(name, f"must be a list, got {shown(items)}")
        return
    for i, item in enumerate(items):
        place = f"{name}[{i}]"
        if not isinstance(item, dict):
            problems.add(place, f"must be a mapping, got {shown(item)}")
            continue
        valid = _validate(SECTIONS[name], item, place, problems)
        if valid is not None:
            yield place, valid


def parse_catalog(document: Any, source: str = "catalog") -> Catalog:
    """Validate a parsed catalog document; raises CatalogError listing every problem."""
    problems = Problems()
    if not isinstance(document, dict):
        raise CatalogError(["(top): must be a mapping with currency, meters, products, "
                            "customers and subscriptions"], source)
    for key in document:
        if key not in TOP_LEVEL:
            problems.add(str(key), f"unknown field (allowed: {', '.join(TOP_LEVEL)})")
    top: dict[str, Any] = {}
    if "currency" not in document:
        problems.add("currency", "required: an ISO 4217 code such as USD")
    else:
        try:
            top["currency"] = Catalog.model_validate(
                {"currency": document["currency"]}).currency
        except ValidationError as exc:
            problems.items.extend(model_problems(exc, "", Catalog))
    for name, model in (("seller", Seller), ("settings", Settings), ("taxes", Taxes)):
        if document.get(name) is not None:
            value = _validate(model, document[name], name, problems)
            if value is not None:
                top[name] = value
    sections: dict[str, list[tuple[str, Any]]] = {
        name: list(_section(document, name, problems)) for name in SECTIONS}
    for name, items in sections.items():
        _unique(name, items, problems)
    # Items with problems of their own still declare their key: a reference to them is
    # not reported a second time.
    declared = {name: {item.get(_ID_FIELD[name]) for item in document.get(name) or []
                       if isinstance(item, dict)} if isinstance(document.get(name), list)
                else set() for name in SECTIONS}
    check_whole(top, sections, problems, declared)
    if problems.items:
        raise CatalogError(problems.items, source)
    return Catalog(**top, **{name: tuple(item for _, item in items)
                             for name, items in sections.items()})


def identity(section: str, item: Any) -> str:
    """What tells two items of a section apart: the key or id; for products the key and
    the version date ('pro@2027-01-01'). `item` is a model or its stored dict."""
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k, None)
    value = str(get(_ID_FIELD[section]))
    when = get("effective_from") if section == "products" else None
    if when:
        return f"{value}@{when if isinstance(when, str) else when.isoformat()}"
    return value


def _unique(section: str, items: list[tuple[str, Any]], problems: Problems) -> None:
    field = _ID_FIELD[section]
    seen: dict[str, str] = {}
    for place, item in items:
        value = identity(section, item)
        if value in seen:
            what = _WHAT[section] + (" and effective_from" if section == "products" else "")
            problems.add(f"{place}.{field}", f"duplicate {what} {value!r} (first at "
                                             f"{seen[value]})")
        else:
            seen[value] = place


def check_whole(top: dict[str, Any], sections: dict[str, list[tuple[str, Any]]],
                problems: Problems, declared: dict[str, set[Any]] | None = None) -> None:
    """The checks between items: references, versions, money in each currency,
    e-invoicing needs, overlapping subscriptions."""
    currency = top.get("currency")
    check_references(sections, problems, declared)
    check_alerts(sections, problems, declared)
    check_versions(sections["products"], problems)
    if currency is not None:
        check_money(currency, sections, problems)
    check_einvoices(top.get("seller", Seller()), sections["customers"], problems,
                    top.get("taxes", Taxes()))
    check_overlaps(sections["subscriptions"], _versions(sections["products"]), problems)


def _versions(products: list[tuple[str, Product]]) -> dict[str, list[Product]]:
    versions: dict[str, list[Product]] = {}
    for _, product in products:
        versions.setdefault(product.key, []).append(product)
    return versions


def check_versions(products: list[tuple[str, Product]], problems: Problems) -> None:
    """Versions of one product: at most one without `effective_from`, one currency."""
    first: dict[str, tuple[str, Product]] = {}
    undated: dict[str, str] = {}
    for place, product in products:
        if product.effective_from is None:
            if product.key in undated:
                problems.add(f"{place}.effective_from",
                             f"product {product.key!r} is listed more than once: give each "
                             f"version an effective_from date (first at "
                             f"{undated[product.key]})")
            undated.setdefault(product.key, place)
        if product.key in first:
            other_place, other = first[product.key]
            if product.currency != other.currency:
                problems.add(f"{place}.currency",
                             f"versions of product {product.key!r} must share one currency "
                             f"({other_place} has {other.currency or 'the catalog currency'})")
        else:
            first[product.key] = (place, product)


def _money_problem(value: Decimal | None, currency: str) -> str | None:
    if value is None:
        return None
    digits = minor_units(currency)
    if value != round_money(value, currency):
        return (f"{format(value, 'f')} is not an amount in {currency}, which has "
                f"{digits or 'no'} decimal place{'s' if digits != 1 else ''}")
    return None


def check_money(currency: str, sections: dict[str, list[tuple[str, Any]]],
                problems: Problems) -> None:
    """Fees and minimums are amounts of money: no more decimals than the currency has
    (unit prices may have more: they are rounded per line)."""
    currencies: dict[str, str] = {}
    for place, product in sections["products"]:
        money = product.currency or currency
        currencies.setdefault(product.key, money)
        fields = [("base_price", product.base_price), ("minimum_spend", product.minimum_spend)]
        for i, charge in enumerate(product.charges):
            fields.append((f"charges[{i}].minimum_amount", charge.minimum_amount))
            fields.append((f"charges[{i}].maximum_amount", charge.maximum_amount))
            for j, tier in enumerate(getattr(charge.price, "tiers", ())):
                fields.append((f"charges[{i}].price.tiers[{j}].flat_fee", tier.flat_fee))
        for field, value in fields:
            why = _money_problem(value, money)
            if why:
                problems.add(f"{place}.{field}", why)
    for place, sub in sections["subscriptions"]:
        for i, discount in enumerate(sub.discounts):
            money = currencies.get(sub.product, currency)
            why = _money_problem(discount.amount_off, money)
            if why:
                problems.add(f"{place}.discounts[{i}].amount_off", why)
        for i, credit in enumerate(sub.credits):
            why = _money_problem(credit.amount, currencies.get(sub.product, currency))
            if why:
                problems.add(f"{place}.credits[{i}].amount", why)


def check_references(sections: dict[str, list[tuple[str, Any]]], problems: Problems,
                     declared: dict[str, set[Any]] | None = None) -> None:
    declared = declared or {}
    meters = {m.key for _, m in sections["meters"]} | declared.get("meters", set())
    products = {p.key for _, p in sections["products"]} | declared.get("products", set())
    customers = {c.id for _, c in sections["customers"]} | declared.get("customers", set())
    for place, product in sections["products"]:
        for i, charge in enumerate(product.charges):
            if charge.meter not in meters:
                problems.add(f"{place}.charges[{i}].meter", f"unknown meter {charge.meter!r}")
    charged: dict[str, set[str]] = {}
    for _, product in sections["products"]:
        charged.setdefault(product.key, set()).update(c.meter for c in product.charges)
    for place, sub in sections["subscriptions"]:
        if sub.customer not in customers:
            problems.add(f"{place}.customer", f"unknown customer {sub.customer!r}")
        if sub.product not in products:
            problems.add(f"{place}.product", f"unknown product {sub.product!r}")
            continue
        known = charged.get(sub.product, set())
        for i, entitlement in enumerate(sub.entitlements):
            if entitlement.meter not in known and sub.product in charged:
                problems.add(f"{place}.entitlements[{i}].meter",
                             f"product {sub.product!r} has no charge for meter "
                             f"{entitlement.meter!r}: an entitlement draws from a charged "
                             f"meter's usage")
        for field, items in (("credits", sub.credits), ("discounts", sub.discounts)):
            for i, item in enumerate(items):
                for j, target in enumerate(item.applies_to):
                    if target != BASE_FEE and target not in known and sub.product in charged:
                        problems.add(f"{place}.{field}[{i}].applies_to[{j}]",
                                     f"product {sub.product!r} has no charge for meter "
                                     f"{target!r} (use a charged meter's key, or base_fee)")


def check_alerts(sections: dict[str, list[tuple[str, Any]]], problems: Problems,
                 declared: dict[str, set[Any]] | None = None) -> None:
    declared = declared or {}
    meters = {m.key for _, m in sections["meters"]} | declared.get("meters", set())
    customers = {c.id for _, c in sections["customers"]} | declared.get("customers", set())
    for place, rule in sections["alerts"]:
        if rule.meter is not None and rule.meter not in meters:
            problems.add(f"{place}.meter", f"unknown meter {rule.meter!r}")
        for i, customer in enumerate(rule.customers):
            if customer not in customers:
                problems.add(f"{place}.customers[{i}]", f"unknown customer {customer!r}")


def check_einvoices(seller: Seller, customers: list[tuple[str, Any]],
                    problems: Problems, taxes: Taxes | None = None) -> None:
    """E-invoices (EN 16931) name both parties' countries and the seller's tax id, and
    carry one VAT rate per line."""
    receiving = [(place, c) for place, c in customers
                 if (c.einvoice or seller.einvoice) == "factur-x"]
    for place, customer in receiving:
        if customer.country is None:
            problems.add(f"{place}.country", "required for e-invoices (einvoice: factur-x)")
        elif taxes is not None:
            matching = [r for r in taxes.rates if r.country == customer.country
                        and r.region in (None, customer.region)]
            if len(matching) > 1:
                problems.add(f"{place}.einvoice",
                             f"an EN 16931 e-invoice carries one VAT rate per line, but "
                             f"{len(matching)} tax rates apply to this customer "
                             f"({', '.join(r.name for r in matching)})")
    if receiving:
        who = receiving[0][0]
        if seller.country is None:
            problems.add("seller.country", f"required when customers receive e-invoices "
                                           f"({who} does)")
        if not seller.tax_id:
            problems.add("seller.tax_id", f"required when customers receive e-invoices "
                                          f"({who} does)")


def check_overlaps(subscriptions: list[tuple[str, Subscription]],
                   products: dict[str, list[Product]], problems: Problems) -> None:
    """A customer's events must not be billed twice: two subscriptions of one customer
    that overlap in time must not charge the same meter."""
    by_customer: dict[str, list[tuple[str, Subscription]]] = {}
    for place, sub in subscriptions:
        by_customer.setdefault(sub.customer, []).append((place, sub))
    for items in by_customer.values():
        for i, (_, a) in enumerate(items):
            for place_b, b in items[i + 1:]:
                if a.product not in products or b.product not in products:
                    continue
                overlap = (b.end is None or a.start < b.end) and \
                          (a.end is None or b.start < a.end)
                shared = {c.meter for p in products[a.product] for c in p.charges} & \
                         {c.meter for p in products[b.product] for c in p.charges}
                if overlap and shared:
                    problems.add(place_b,
                                 f"overlaps {a.id} for customer {a.customer} and charges the "
                                 f"same meter(s) {', '.join(sorted(shared))}: usage would be "
                                 f"billed twice")


def load_catalog_file(path: str | Path) -> Catalog:
    """Read and validate a catalog YAML file; raises CatalogError listing every problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError([f"cannot read file: {exc.strerror or exc}"], str(path)) from None
    try:
        document = load_yaml(data)
    except YamlProblem as exc:
        raise CatalogError([str(exc)], str(path)) from None
    return parse_catalog(document, source=str(path))
