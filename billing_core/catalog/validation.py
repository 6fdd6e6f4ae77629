"""Validating a catalog document and listing every problem with its place.

Each item of each section is validated on its own, so one bad meter does not hide the
problems of the others; cross-references (a charge's meter, a subscription's customer and
product, overlapping subscriptions) are then checked between the items that are valid.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from billing_core.catalog.fields import shown
from billing_core.catalog.models import (
    Catalog,
    Customer,
    Meter,
    Product,
    Seller,
    Settings,
    Subscription,
)
from billing_core.catalog.yaml_loader import YamlProblem, load_yaml

SECTIONS: dict[str, type[BaseModel]] = {
    "meters": Meter, "products": Product, "customers": Customer,
    "subscriptions": Subscription,
}
TOP_LEVEL = ("currency", "seller", "settings", *SECTIONS)
_ID_FIELD = {"meters": "key", "products": "key", "customers": "id", "subscriptions": "id"}
_WHAT = {"meters": "meter key", "products": "product key", "customers": "customer id",
         "subscriptions": "subscription id"}


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
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap_model(field.annotation)
    return current


def _message(error: Any, model: type[BaseModel]) -> tuple[list[Any], str]:
    loc = list(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "catalog":
        loc.append(error["ctx"]["field"])
        return loc, error["msg"]
    if kind == "value_error":
        return loc, str(error["ctx"]["error"])
    if kind == "missing":
        return loc, "required"
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
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
    for name, model in (("seller", Seller), ("settings", Settings)):
        if document.get(name) is not None:
            value = _validate(model, document[name], name, problems)
            if value is not None:
                top[name] = value
    sections: dict[str, list[tuple[str, Any]]] = {
        name: list(_section(document, name, problems)) for name in SECTIONS}
    for name, items in sections.items():
        _unique(items, _ID_FIELD[name], _WHAT[name], problems)
    # Items with problems of their own still declare their key: a reference to them is
    # not reported a second time.
    declared = {name: {item.get(_ID_FIELD[name]) for item in document.get(name) or []
                       if isinstance(item, dict)} if isinstance(document.get(name), list)
                else set() for name in SECTIONS}
    check_references(sections, problems, declared)
    check_overlaps([(place, s) for place, s in sections["subscriptions"]],
                   {p.key: p for _, p in sections["products"]}, problems)
    if problems.items:
        raise CatalogError(problems.items, source)
    return Catalog(**top, **{name: tuple(item for _, item in items)
                             for name, items in sections.items()})


def _unique(items: list[tuple[str, Any]], field: str, what: str, problems: Problems) -> None:
    seen: dict[str, str] = {}
    for place, item in items:
        value = getattr(item, field)
        if value in seen:
            problems.add(f"{place}.{field}", f"duplicate {what} {value!r} (first at "
                                             f"{seen[value]})")
        else:
            seen[value] = place


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
    for place, sub in sections["subscriptions"]:
        if sub.customer not in customers:
            problems.add(f"{place}.customer", f"unknown customer {sub.customer!r}")
        if sub.product not in products:
            problems.add(f"{place}.product", f"unknown product {sub.product!r}")


def check_overlaps(subscriptions: list[tuple[str, Subscription]],
                   products: dict[str, Product], problems: Problems) -> None:
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
                shared = {c.meter for c in products[a.product].charges} & \
                         {c.meter for c in products[b.product].charges}
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
