"""Persisting the catalog: apply a validated Catalog in one transaction, load it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from billing_core.catalog import (
    Catalog,
    Charge,
    Condition,
    Customer,
    Filter,
    Meter,
    Product,
    Seller,
    Subscription,
)
from billing_core.db.models import (
    CatalogSetting,
    ChargeRow,
    CustomerRow,
    MeterRow,
    ProductRow,
    SubscriptionRow,
)


@dataclass(frozen=True)
class ApplySummary:
    meters: int
    products: int
    charges: int
    customers: int
    subscriptions: int


def apply_catalog(engine: Engine, catalog: Catalog) -> ApplySummary:
    """Upsert every entity of the catalog, all or nothing. Entities not in the file stay."""
    with Session(engine) as session, session.begin():
        session.merge(CatalogSetting(key="currency", value=catalog.currency))
        session.merge(CatalogSetting(key="seller", value=json.dumps(
            {"name": catalog.seller.name, "email": catalog.seller.email,
             "address": catalog.seller.address})))
        for m in catalog.meters:
            session.merge(MeterRow(
                key=m.key, name=m.name, description=m.description, event_name=m.event_name,
                aggregation=m.aggregation, over_property=m.over_property, unit=m.unit,
                filter=m.filter.to_dict() if m.filter else None))
        charges = 0
        for p in catalog.products:
            session.merge(ProductRow(key=p.key, name=p.name, description=p.description,
                                     base_price=p.base_price))
            session.flush()
            session.exec(delete(ChargeRow).where(ChargeRow.product_key == p.key))
            for position, c in enumerate(p.charges):
                session.add(ChargeRow(product_key=p.key, meter_key=c.meter, position=position,
                                      price_per_unit=c.price_per_unit,
                                      free_threshold=c.free_threshold))
                charges += 1
        for c in catalog.customers:
            session.merge(CustomerRow(id=c.id, name=c.name, email=c.email, address=c.address))
        session.flush()
        for s in catalog.subscriptions:
            session.merge(SubscriptionRow(id=s.id, customer_id=s.customer,
                                          product_key=s.product, start_date=s.start,
                                          end_date=s.end))
    return ApplySummary(meters=len(catalog.meters), products=len(catalog.products),
                        charges=charges, customers=len(catalog.customers),
                        subscriptions=len(catalog.subscriptions))


def _filter_from_dict(data: dict[str, Any] | None) -> Filter | None:
    if not data:
        return None
    return Filter(
        logic=data.get("logic", "and"),
        conditions=tuple(Condition(key=c["key"], operator=c["operator"],
                                   value=_condition_value(c["value"]))
                         for c in data.get("conditions", [])),
        groups=tuple(g for g in (_filter_from_dict(x) for x in data.get("groups", [])) if g),
    )


def _condition_value(value: Any) -> Any:
    if isinstance(value, float):  # never expected (JSON is read with Decimals)
        raise TypeError("float in a stored filter")
    return value


def load_catalog(engine: Engine) -> Catalog:
    """The catalog as stored in the database."""
    with Session(engine) as session:
        currency_row = session.get(CatalogSetting, "currency")
        seller_row = session.get(CatalogSetting, "seller")
        if currency_row is None:
            raise LookupError("no catalog applied yet: run `billing catalog apply FILE.yaml`")
        meters = tuple(
            Meter(key=m.key, name=m.name, event_name=m.event_name, aggregation=m.aggregation,
                  unit=m.unit, description=m.description, over_property=m.over_property,
                  filter=_filter_from_dict(m.filter))
            for m in session.exec(select(MeterRow).order_by(MeterRow.key)))
        charges: dict[str, list[Charge]] = {}
        for c in session.exec(select(ChargeRow).order_by(ChargeRow.product_key,
                                                        ChargeRow.position)):
            charges.setdefault(c.product_key, []).append(
                Charge(meter=c.meter_key, price_per_unit=Decimal(c.price_per_unit),
                       free_threshold=Decimal(c.free_threshold)))
        products = tuple(
            Product(key=p.key, name=p.name, base_price=p.base_price, description=p.description,
                    charges=tuple(charges.get(p.key, ())))
            for p in session.exec(select(ProductRow).order_by(ProductRow.key)))
        customers = tuple(
            Customer(id=c.id, name=c.name, email=c.email, address=c.address)
            for c in session.exec(select(CustomerRow).order_by(CustomerRow.id)))
        subscriptions = tuple(
            Subscription(id=s.id, customer=s.customer_id, product=s.product_key,
                         start=s.start_date, end=s.end_date)
            for s in session.exec(select(SubscriptionRow).order_by(SubscriptionRow.id)))
    seller = Seller(**json.loads(seller_row.value)) if seller_row else Seller()
    return Catalog(currency=currency_row.value, seller=seller, meters=meters, products=products,
                   customers=customers, subscriptions=subscriptions)


def customer_ids(engine: Engine) -> set[str]:
    """Every customer id in the catalog (for validating events)."""
    with Session(engine) as session:
        return set(session.exec(select(CustomerRow.id)))
