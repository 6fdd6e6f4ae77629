"""Use case: measure every active subscription of a period (what the benchmark's aggregate
stage times, and what a billing run measures for its drafts)."""

from __future__ import annotations

from dataclasses import dataclass, field

from billing_core.catalog.models import Catalog, Subscription
from billing_core.clock import Clock
from billing_core.invoicing import window_of
from billing_core.metering import MeterUsage, Window, measure, rollup, skipped_by_meter
from billing_core.metering.rollup import RollupReport
from billing_core.periods import BillingPeriod
from billing_core.services.catalog import NoCatalog, current_catalog
from billing_core.services.drafting import window
from billing_core.services.unit_of_work import SqlUnitOfWork


@dataclass
class PeriodUsage:
    period: BillingPeriod
    subscriptions: list[Subscription]
    usage: dict[str, dict[str, MeterUsage]] = field(default_factory=dict)

    def skipped_by_meter(self) -> dict[str, dict[str, int]]:
        return skipped_by_meter(self.usage.values())


def period_windows(catalog: Catalog, period: BillingPeriod,
                   customers: list[str] | None = None) -> list[Window]:
    """One window per subscription active in the period (keyed by subscription id)."""
    chosen = set(customers) if customers else None
    windows = []
    for sub in catalog.subscriptions:
        if chosen is not None and sub.customer not in chosen:
            continue
        bounds = window_of(catalog, sub, period)
        if bounds is not None:
            windows.append(window(catalog, sub, period, sub.id, bounds))
    return windows


def measure_period(uow: SqlUnitOfWork, period: BillingPeriod,
                   customers: list[str] | None = None,
                   catalog: Catalog | None = None) -> PeriodUsage:
    """Usage of every subscription active in `period`, per meter its product charges."""
    with uow.read():
        catalog = catalog or current_catalog(uow)
        windows = period_windows(catalog, period, customers)
        usage = measure(uow.connection, catalog.meters_by_key, windows)
    subs = {s.id: s for s in catalog.subscriptions}
    return PeriodUsage(period, [subs[w.key] for w in windows], usage)


def roll_up_usage(uow: SqlUnitOfWork, clock: Clock) -> RollupReport | None:
    """Bring the usage roll-ups (PostgreSQL) up to date with the events stored so far, for
    the meters of the catalog in force: a short transaction to find how far (it waits
    for chunks being stored), then one that adds the events (ingests go on meanwhile).
    None where no roll-ups are kept (SQLite) or there is no catalog yet."""
    if not rollup.maintained(uow.engine.dialect.name):
        return None
    with uow:
        upto = rollup.settled_seq(uow.connection)
        uow.commit()
    with uow:
        try:
            meters = current_catalog(uow).meters
        except NoCatalog:
            return None
        report = rollup.roll_up(uow.connection, meters, clock.now(), upto)
        uow.commit()
    return report
