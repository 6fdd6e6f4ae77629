"""Use cases: a customer's usage over any range, and the upcoming-invoice preview.

Both read through the same metering code as billing runs and write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from billing_core.clock import Clock
from billing_core.cycles import cycle_containing, local_midnight
from billing_core.documents.model import Document
from billing_core.metering import Window, measure
from billing_core.periods import BillingPeriod
from billing_core.services.catalog import current_catalog
from billing_core.services.drafting import draft_period
from billing_core.services.unit_of_work import SqlUnitOfWork

MAX_DAYS = 3660


class BadRange(ValueError):
    pass


@dataclass(frozen=True)
class UsageRow:
    meter: str
    name: str
    unit: str
    start: date
    end: date              # exclusive
    quantity: Decimal
    events: int


def usage_report(uow: SqlUnitOfWork, customer: str, start: date, end: date,
                 meter: str | None = None, by_day: bool = False) -> list[UsageRow]:
    """Usage of every meter (or one) for one customer over the days [start, end) of its
    time zone, in total or per day."""
    if end <= start:
        raise BadRange(f"--to {end} must be after --from {start}")
    if (end - start).days > MAX_DAYS:
        raise BadRange(f"a range of at most {MAX_DAYS} days, got {(end - start).days}")
    with uow.read():
        catalog = current_catalog(uow)
        if customer not in {c.id for c in catalog.customers}:
            raise BadRange(f"unknown customer {customer!r}")
        keys = [meter] if meter else [m.key for m in catalog.meters]
        unknown = [k for k in keys if k not in catalog.meters_by_key]
        if unknown:
            raise BadRange(f"unknown meter {unknown[0]!r} (one of: "
                           f"{', '.join(m.key for m in catalog.meters)})")
        days = ([(start + timedelta(days=i), start + timedelta(days=i + 1))
                 for i in range((end - start).days)] if by_day else [(start, end)])
        tz = catalog.timezone(customer)
        windows = [Window(d0.isoformat(), customer, local_midnight(d0, tz),
                          local_midnight(d1, tz), tuple(keys)) for d0, d1 in days]
        usage = measure(uow.connection, catalog.meters_by_key, windows)
    rows = []
    for d0, d1 in days:
        for key in keys:
            u = usage[d0.isoformat()][key]
            m = catalog.meter(key)
            rows.append(UsageRow(key, m.name, m.unit, d0, d1, u.quantity, u.matched_events))
    return rows


def preview_invoices(uow: SqlUnitOfWork, clock: Clock, customer: str,
                     as_of: datetime | None = None) -> list[Document]:
    """The customer's invoices for the cycles containing `as_of` (default now) as they
    would be with the usage up to then: never numbered, never stored."""
    moment = as_of or clock.now()
    with uow.read():
        catalog = current_catalog(uow)
    if customer not in {c.id for c in catalog.customers}:
        raise BadRange(f"unknown customer {customer!r}")
    tz = catalog.timezone(customer)
    current = {s.id: cycle_containing(s, moment, tz).period
               for s in catalog.subscriptions if s.customer == customer}
    documents: list[Document] = []
    for period in sorted(set(current.values()) or {BillingPeriod.containing(moment)}):
        result = draft_period(uow, clock, period, [customer], until=moment, store=False)
        documents.extend(d for d in result.documents
                         if current.get(d.subscription_id) == period)
    return documents
