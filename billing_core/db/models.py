"""sqlmodel tables. Money and quantities are ExactDecimal; times are naive UTC."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from billing_core.db.types import ExactDecimal, JsonDocument


def _utc(nullable: bool = False) -> Column:
    """A naive-UTC timestamp column (the same text format on SQLite for ORM and bulk I/O)."""
    return Column(DateTime(timezone=False), nullable=nullable)


class CatalogSetting(SQLModel, table=True):
    __tablename__ = "catalog_setting"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class MeterRow(SQLModel, table=True):
    __tablename__ = "meter"
    key: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=256)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    event_name: str = Field(max_length=256)
    aggregation: str = Field(max_length=16)
    over_property: str | None = Field(default=None, max_length=128)
    unit: str = Field(default="", max_length=64)
    filter: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))


class ProductRow(SQLModel, table=True):
    __tablename__ = "product"
    key: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=256)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    base_price: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))


class ChargeRow(SQLModel, table=True):
    __tablename__ = "charge"
    __table_args__ = (UniqueConstraint("product_key", "meter_key"),)
    id: int | None = Field(default=None, primary_key=True)
    product_key: str = Field(foreign_key="product.key", max_length=64)
    meter_key: str = Field(foreign_key="meter.key", max_length=64)
    position: int = 0
    price_per_unit: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    free_threshold: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))


class CustomerRow(SQLModel, table=True):
    __tablename__ = "customer"
    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(sa_column=Column(Text, nullable=False))
    email: str = Field(max_length=320)
    address: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class SubscriptionRow(SQLModel, table=True):
    __tablename__ = "subscription"
    id: str = Field(primary_key=True, max_length=128)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=128)
    product_key: str = Field(foreign_key="product.key", max_length=64)
    start_date: date
    end_date: date | None = None


class EventRow(SQLModel, table=True):
    """One usage event. `payload_hash` identifies identical re-sends of an event_id."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_customer_name_ts", "customer_id", "event_name", "ts"),
        Index("ix_event_name_ts", "event_name", "ts"),
    )
    event_id: str = Field(primary_key=True, max_length=256)
    customer_id: str = Field(max_length=128)
    event_name: str = Field(max_length=256)
    ts: datetime = Field(sa_column=_utc())
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JsonDocument))
    payload_hash: str = Field(max_length=32)
    ingested_at: datetime = Field(sa_column=_utc())
    source: str = Field(sa_column=Column(Text, nullable=False))


class QuarantineRow(SQLModel, table=True):
    """A rejected input record, kept with its place, raw text and reason until replayed."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source", "location", "raw_hash",
                                       name="uq_quarantine_record"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_column=Column(Text, nullable=False))
    location: str = Field(max_length=64)
    raw: str = Field(sa_column=Column(Text, nullable=False))
    raw_hash: str = Field(max_length=32)
    candidate: str | None = Field(default=None, sa_column=Column(Text))
    reason: str = Field(max_length=64, index=True)
    detail: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 1
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    resolved_event_id: str | None = Field(default=None, max_length=256)


class BillingRunRow(SQLModel, table=True):
    __tablename__ = "billing_run"
    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7, index=True)
    flow_run_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(True))
    status: str = Field(default="running", max_length=16)
    customers: list[str] | None = Field(default=None, sa_column=Column(JsonDocument))
    subscriptions: int = 0
    invoices_created: int = 0
    invoices_updated: int = 0
    invoices_unchanged: int = 0
    currency: str | None = Field(default=None, max_length=3)
    total: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal))
    skipped: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    error: str | None = Field(default=None, sa_column=Column(Text))


class InvoiceRow(SQLModel, table=True):
    """One invoice per subscription per period; re-runs keep its number."""

    __tablename__ = "invoice"
    __table_args__ = (UniqueConstraint("subscription_id", "period",
                                       name="uq_invoice_subscription_period"),)
    invoice_number: str = Field(primary_key=True, max_length=32)
    subscription_id: str = Field(max_length=128)
    customer_id: str = Field(max_length=128, index=True)
    period: str = Field(max_length=7, index=True)
    sequence: int
    currency: str = Field(max_length=3)
    subtotal: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    total: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    issue_date: date
    content_hash: str = Field(max_length=64)
    document: str = Field(sa_column=Column(Text, nullable=False))
    billing_run_id: int | None = Field(default=None, foreign_key="billing_run.id")
    revision: int = 1
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
