"""sqlmodel tables. Money and quantities are ExactDecimal; times are naive UTC."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from billing_core.db.event_layout import EVENT_MONTH_SQL, INDEX_NAME
from billing_core.db.types import ExactDecimal, JsonDocument


def table(name: str) -> Table:
    """The SQLAlchemy table of one of these models, by its name."""
    return SQLModel.metadata.tables[name]


def _utc(nullable: bool = False) -> Column:
    """A naive-UTC timestamp column (the same text format on SQLite for ORM and bulk I/O)."""
    return Column(DateTime(timezone=False), nullable=nullable)


class CatalogVersionRow(SQLModel, table=True):
    """Every applied catalog, whole: the newest row is the catalog in force."""

    __tablename__ = "catalog_version"
    id: int | None = Field(default=None, primary_key=True)
    applied_at: datetime = Field(sa_column=_utc())
    source: str = Field(sa_column=Column(Text, nullable=False))
    digest: str = Field(max_length=64)
    document: dict[str, Any] = Field(sa_column=Column(JsonDocument, nullable=False))


class CustomerRow(SQLModel, table=True):
    """The catalog's customers as SQL sees them (events are checked against these)."""

    __tablename__ = "customer"
    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(sa_column=Column(Text, nullable=False))
    email: str = Field(max_length=320)
    address: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    archived_at: datetime | None = Field(default=None, sa_column=_utc(True))


class SubscriptionRow(SQLModel, table=True):
    """The catalog's subscriptions as SQL sees them (metering joins events to these)."""

    __tablename__ = "subscription"
    id: str = Field(primary_key=True, max_length=128)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=128)
    product_key: str = Field(max_length=64)
    start_date: date
    end_date: date | None = None
    archived_at: datetime | None = Field(default=None, sa_column=_utc(True))


class EventRow(SQLModel, table=True):
    """One usage event. `payload_hash` identifies identical re-sends of an event_id."""

    __tablename__ = "event"
    __table_args__ = (
        # PostgreSQL finds a customer's events by time, SQLite by month (event_layout)
        Index("ix_event_customer_name_ts", "customer_id", "event_name", "ts"
              ).ddl_if(dialect="postgresql"),
        Index(INDEX_NAME, "customer_id", "event_name", text(EVENT_MONTH_SQL.format(ts="ts"))
              ).ddl_if(dialect="sqlite"),
        Index("ix_event_ingested_at", "ingested_at"),
        Index("ix_event_seq", "seq").ddl_if(dialect="postgresql"),
    )
    event_id: str = Field(primary_key=True, max_length=256)
    customer_id: str = Field(max_length=128)
    event_name: str = Field(max_length=256)
    ts: datetime = Field(sa_column=_utc())
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JsonDocument))
    payload_hash: str = Field(max_length=32)
    ingested_at: datetime = Field(sa_column=_utc())
    source: str = Field(sa_column=Column(Text, nullable=False))
    # PostgreSQL: the order events were stored in (a sequence's default; NULL on SQLite),
    # which tells the usage roll-ups which events they already hold
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class UsageRollupRow(SQLModel, table=True):
    """PostgreSQL: one meter's usage by one customer on one UTC day, kept as events are
    stored (`billing_core.metering.rollup`); `fingerprint` names the meter's test."""

    __tablename__ = "usage_rollup"
    customer_id: str = Field(primary_key=True, max_length=128)
    fingerprint: str = Field(primary_key=True, max_length=64)
    day: date = Field(primary_key=True)
    matched: int = Field(sa_column=Column(BigInteger, nullable=False))
    present: int = Field(sa_column=Column(BigInteger, nullable=False))
    numbers: int = Field(sa_column=Column(BigInteger, nullable=False))
    total: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal(80)))
    high: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal(80)))
    low: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal(80)))


class UsageRollupValueRow(SQLModel, table=True):
    """PostgreSQL: a distinct value of a unique_count meter's property, seen from one
    customer on one UTC day."""

    __tablename__ = "usage_rollup_value"
    customer_id: str = Field(primary_key=True, max_length=128)
    fingerprint: str = Field(primary_key=True, max_length=64)
    day: date = Field(primary_key=True)
    value: Any = Field(sa_column=Column(JsonDocument, primary_key=True))


class UsageRollupMeterRow(SQLModel, table=True):
    """A meter test whose roll-up is complete up to the watermark."""

    __tablename__ = "usage_rollup_meter"
    fingerprint: str = Field(primary_key=True, max_length=64)
    meter: str = Field(max_length=64)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    rolled_at: datetime = Field(sa_column=_utc())


class UsageRollupStateRow(SQLModel, table=True):
    """The roll-ups hold every event with seq <= watermark (one row; PostgreSQL only)."""

    __tablename__ = "usage_rollup_state"
    id: int = Field(primary_key=True)
    watermark: int = Field(sa_column=Column(BigInteger, nullable=False))


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
    """One billing run (drafting or finalizing), whatever its outcome."""

    __tablename__ = "billing_run"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="draft", max_length=16)
    period: str = Field(max_length=7, index=True)
    flow_run_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(True))
    status: str = Field(default="running", max_length=16)
    pid: int | None = None
    hostname: str | None = Field(default=None, max_length=255)
    customers: list[str] | None = Field(default=None, sa_column=Column(JsonDocument))
    subscriptions: int = 0
    invoices_created: int = 0
    invoices_updated: int = 0
    invoices_unchanged: int = 0
    invoices_finalized: int = 0
    credit_notes: int = 0
    documents_rendered: int = 0
    currency: str | None = Field(default=None, max_length=3)
    total: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal))
    totals: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    skipped: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    late_usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    failures: list[Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    approval: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    error: str | None = Field(default=None, sa_column=Column(Text))


class DocumentRow(SQLModel, table=True):
    """An invoice (draft, finalized, paid or void) or a credit note (issued).

    A draft has a draft reference and no number; finalization gives the number, the issue
    and due dates, and freezes `content` (the JSON document); the files rendered from it
    are recorded by their SHA-256 in `file_hashes` and never change again.
    """

    __tablename__ = "document"
    __table_args__ = (
        Index("uq_document_invoice_generation", "subscription_id", "period", "generation",
              unique=True, sqlite_where=text("kind = 'invoice'"),
              postgresql_where=text("kind = 'invoice'")),
        Index("ix_document_period_status", "period", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    draft_ref: str | None = Field(default=None, max_length=64, unique=True)
    number: str | None = Field(default=None, max_length=64, unique=True)
    series: str | None = Field(default=None, max_length=64)
    sequence: int | None = None
    subscription_id: str = Field(max_length=128)
    customer_id: str = Field(max_length=128, index=True)
    period: str = Field(max_length=7)
    generation: int = 1
    reissue_of_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("document.id"), nullable=True))
    superseded_by_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("document.id"), nullable=True))
    credited_document_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("document.id"), nullable=True,
                                       index=True))
    currency: str = Field(max_length=3)
    subtotal: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    total: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    amount_due: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    issue_date: date | None = None
    due_date: date | None = None
    facts_hash: str = Field(max_length=64)
    document_hash: str = Field(max_length=64)
    revision: int = 1
    content: str = Field(sa_column=Column(Text, nullable=False))
    file_hashes: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    files_dir: str | None = Field(default=None, sa_column=Column(Text))
    rendered_key: str | None = Field(default=None, max_length=64)
    billing_run_id: int | None = Field(default=None, foreign_key="billing_run.id")
    finalized_at: datetime | None = Field(default=None, sa_column=_utc(True))
    paid_at: datetime | None = Field(default=None, sa_column=_utc(True))
    paid_date: date | None = None
    payment_reference: str | None = Field(default=None, sa_column=Column(Text))
    voided_at: datetime | None = Field(default=None, sa_column=_utc(True))
    void_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class NumberSequenceRow(SQLModel, table=True):
    """The last number given in a gapless series (e.g. invoices of 2026)."""

    __tablename__ = "number_sequence"
    series: str = Field(primary_key=True, max_length=64)
    last_value: int = 0


class BilledUsageRow(SQLModel, table=True):
    """What a finalized document billed of one meter for one usage period: the base that
    late usage is measured against."""

    __tablename__ = "billed_usage"
    __table_args__ = (Index("ix_billed_usage_sub_period", "subscription_id", "usage_period"),)
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    subscription_id: str = Field(max_length=128)
    usage_period: str = Field(max_length=7)
    meter: str = Field(max_length=64)
    quantity: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    events: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    amount: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal, nullable=True))


class LeaseRow(SQLModel, table=True):
    """Who holds a named lock (the lock itself is the database's or the OS's)."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True, max_length=64)
    run_id: int | None = None
    pid: int | None = None
    hostname: str | None = Field(default=None, max_length=255)
    acquired_at: datetime = Field(sa_column=_utc())


class OutboxRow(SQLModel, table=True):
    """One message to send: queued in the transaction that issues its document, sent at
    most once (a message whose fate is unknown stays `sending` for an operator)."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("document_id", "sequence", name="uq_outbox_sequence"),
                      Index("ix_outbox_status_next", "status", "next_attempt_at"))
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="document", max_length=16)
    document_id: int | None = Field(default=None, foreign_key="document.id", index=True)
    reference: str = Field(max_length=64)
    sequence: int = 1
    sender: str = Field(sa_column=Column(Text, nullable=False))
    reply_to: str | None = Field(default=None, sa_column=Column(Text))
    recipients: dict[str, Any] = Field(sa_column=Column(JsonDocument, nullable=False))
    subject: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=255, unique=True)
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDocument))
    status: str = Field(max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime = Field(sa_column=_utc())
    created_at: datetime = Field(sa_column=_utc())
    sending_at: datetime | None = Field(default=None, sa_column=_utc(True))
    sent_at: datetime | None = Field(default=None, sa_column=_utc(True))
    updated_at: datetime = Field(sa_column=_utc())
    billing_run_id: int | None = Field(default=None, foreign_key="billing_run.id")


class CreditGrantRow(SQLModel, table=True):
    """A credit a customer holds: money (`currency`) or a meter's units (`meter`, an
    entitlement of one subscription's cycle). What is left is the sum of its ledger
    entries; the grant row itself never changes."""

    __tablename__ = "credit_grant"
    __table_args__ = (Index("ix_credit_grant_customer", "customer_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)                       # money | units
    currency: str | None = Field(default=None, max_length=3)
    meter: str | None = Field(default=None, max_length=64)
    subscription_id: str | None = Field(default=None, max_length=128)
    period: str | None = Field(default=None, max_length=7)  # units: the cycle it belongs to
    amount: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    priority: int = 50
    effective_from: date | None = None             # None: any period
    expires: date | None = None                            # the last day it can be used for
    applies_to: list[str] | None = Field(default=None, sa_column=Column(JsonDocument))
    name: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=16)                     # cli | recurring | entitlement
    key: str | None = Field(default=None, max_length=255, unique=True)
    created_at: datetime = Field(sa_column=_utc())


class CreditEntryRow(SQLModel, table=True):
    """One movement of a grant: grant (+), apply (-, to an invoice), restore (+, a credit
    note gave it back), rollover (-, units moved to the next cycle), expire (-), void (-)."""

    __tablename__ = "credit_ledger"
    __table_args__ = (UniqueConstraint("grant_id", "document_id", "kind",
                                       name="uq_credit_ledger_document"),
                      Index("ix_credit_ledger_customer", "customer_id", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="credit_grant.id", index=True)
    customer_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    amount: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    document_id: int | None = Field(default=None, foreign_key="document.id")
    reference: str | None = Field(default=None, max_length=64)
    period: str | None = Field(default=None, max_length=7)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc())


class AlertRow(SQLModel, table=True):
    """An alert that fired: once per rule, customer, subject (meter, currency or grant)
    and cycle."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("rule_id", "customer_id", "subject", "period",
                                       name="uq_alert_once"),)
    id: int | None = Field(default=None, primary_key=True)
    rule_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    customer_id: str = Field(max_length=128, index=True)
    subject: str = Field(max_length=128)
    period: str = Field(max_length=7)
    threshold: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    value: Decimal = Field(sa_column=Column(ExactDecimal, nullable=False))
    message: str = Field(sa_column=Column(Text, nullable=False))
    fired_at: datetime = Field(sa_column=_utc())
