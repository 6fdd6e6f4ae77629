"""A subscription's billing cycles, base-fee intervals and proration. Pure functions.

A cycle runs from local midnight to local midnight in the customer's time zone (so across
daylight-saving changes a cycle is 743 or 745 hours long), and an event belongs to the
cycle whose UTC bounds hold its UTC timestamp. Anchors:
- `calendar`: the 1st of each month;
- `anniversary`: the subscription's start day each month (the 31st becomes the last day
  of shorter months).
Each cycle carries the label (`YYYY-MM`) of the month that holds its last day, so a run
for 2026-10 bills every cycle that ended by the start of November, and a subscription
has at most one cycle per label.

Base fees are charged per interval (`month`, `quarter`, `year`), in advance: the whole
interval's fee is on the invoice of the first cycle of the interval in which the
subscription is active; with `proration: daily` it is scaled by the days of the interval
the subscription is active (start and end dates known when that invoice is drafted).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from billing_core.catalog.models import Catalog, Product, Subscription
from billing_core.periods import BillingPeriod

INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant (naive UTC) at which `day` begins in `timezone`."""
    local = datetime(day.year, day.month, day.day, tzinfo=zone(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def local_date(moment: datetime, timezone: str) -> date:
    """The local day in `timezone` of a naive UTC instant."""
    return moment.replace(tzinfo=UTC).astimezone(zone(timezone)).date()


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def anchored(month_index: int, anchor_day: int) -> date:
    """The anchor day of a month, clamped to the month's last day."""
    year, month = divmod(month_index, 12)
    month += 1
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Cycle:
    """One billing cycle: local days [start, end) in `timezone`."""

    period: BillingPeriod
    start: date
    end: date
    timezone: str

    @property
    def start_utc(self) -> datetime:
        return local_midnight(self.start, self.timezone)

    @property
    def end_utc(self) -> datetime:
        return local_midnight(self.end, self.timezone)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def anchor_day(subscription: Subscription) -> int:
    return subscription.start.day if subscription.billing_anchor == "anniversary" else 1


def cycle(subscription: Subscription, period: BillingPeriod, timezone: str) -> Cycle:
    """The subscription's cycle whose last day falls in `period`'s month."""
    day = anchor_day(subscription)
    index = period.year * 12 + period.month - 1
    end = anchored(index, day)
    if end.day == 1:                    # the anchor is the 1st: the cycle ends next month
        end = anchored(index + 1, day)
    start = anchored(_month_index(end) - 1, day)
    return Cycle(period, start, end, timezone)


def cycle_containing(subscription: Subscription, moment: datetime, timezone: str) -> Cycle:
    """The subscription's cycle that holds the (naive UTC) instant `moment`."""
    today = local_date(moment, timezone)
    month = BillingPeriod(today.year, today.month)
    for period in (month, month.shift(1)):
        found = cycle(subscription, period, timezone)
        if found.start <= today < found.end:
            return found
    return cycle(subscription, month.shift(-1), timezone)


def active_days(subscription: Subscription, start: date, end: date
                ) -> tuple[date, date] | None:
    """The days of [start, end) on which the subscription is active, or None."""
    first = max(start, subscription.start)
    last = min(end, subscription.end) if subscription.end else end
    return (first, last) if first < last else None


def usage_window(subscription: Subscription, period: BillingPeriod, timezone: str,
                 until: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The instants (naive UTC) whose events count for the subscription's cycle of
    `period`, cut at `until` when given (a preview up to now); None when not active."""
    c = cycle(subscription, period, timezone)
    days = active_days(subscription, c.start, c.end)
    if days is None:
        return None
    start, end = local_midnight(days[0], timezone), local_midnight(days[1], timezone)
    if until is not None:
        end = min(end, until)
    return (start, end) if start < end else None


@dataclass(frozen=True)
class Interval:
    """A base-fee interval: local days [start, end)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def interval(subscription: Subscription, product: Product, c: Cycle) -> Interval:
    """The base-fee interval that holds cycle `c`."""
    months = INTERVAL_MONTHS[product.base_interval]
    day = anchor_day(subscription)
    here = _month_index(c.start)
    if subscription.billing_anchor == "anniversary":
        origin = _month_index(subscription.start)
        first = origin + ((here - origin) // months) * months
    else:
        first = here - here % months
    return Interval(anchored(first, day), anchored(first + months, day))


@dataclass(frozen=True)
class BaseFeeShare:
    """What part of an interval's base fee a cycle's invoice carries."""

    interval: Interval
    active_start: date
    active_end: date
    days: int                 # active days of the interval
    of_days: int              # days of the interval
    prorated: bool


def base_fee_share(subscription: Subscription, product: Product, c: Cycle
                   ) -> BaseFeeShare | None:
    """The base fee share billed on cycle `c`'s invoice, or None when that invoice
    carries no base fee (not the first active cycle of its interval)."""
    if product.base_price <= 0:
        return None
    span = interval(subscription, product, c)
    active = active_days(subscription, span.start, span.end)
    if active is None or not c.start <= active[0] < c.end:
        return None
    days = (active[1] - active[0]).days
    prorated = product.proration == "daily" and days < span.days
    return BaseFeeShare(span, active[0], active[1], days if prorated else span.days,
                        span.days, prorated)


def cycle_share(subscription: Subscription, c: Cycle) -> tuple[int, int]:
    """(active days, days) of a cycle: the proration of minimums."""
    active = active_days(subscription, c.start, c.end)
    return ((active[1] - active[0]).days if active else 0), c.days


def cycle_number(subscription: Subscription, c: Cycle, since: date) -> int:
    """1 for the cycle that holds `since` (or the first cycle after it), 2 for the next..."""
    first = cycle_containing(subscription, local_midnight(since, c.timezone), c.timezone)
    return _month_index(c.end) - _month_index(first.end) + 1


def period_bounds(catalog: Catalog, period: BillingPeriod) -> tuple[datetime, datetime]:
    """The earliest start and the latest end (naive UTC) of `period` over the time zones
    and anchors in use: a period is open until its last local midnight has passed."""
    zones = {catalog.settings.timezone, *(c.timezone for c in catalog.customers
                                          if c.timezone)}
    starts = [local_midnight(period.start_date, z) for z in zones]
    ends = [local_midnight(period.end_date, z) for z in zones]
    # An anniversary cycle labelled with this month began in the month before.
    starts += [cycle(s, period, catalog.timezone(s.customer)).start_utc
               for s in catalog.subscriptions if s.billing_anchor == "anniversary"]
    return min(starts), max(ends)


def period_state(catalog: Catalog, period: BillingPeriod, now: datetime) -> str:
    """'future', 'open', 'grace' (ended, still in its grace period) or 'closed'."""
    start, end = period_bounds(catalog, period)
    if now < start:
        return "future"
    if now < end:
        return "open"
    if now < end + timedelta(days=catalog.settings.grace_period_days):
        return "grace"
    return "closed"


def grace_ends(catalog: Catalog, period: BillingPeriod) -> datetime:
    return period_bounds(catalog, period)[1] + timedelta(
        days=catalog.settings.grace_period_days)
