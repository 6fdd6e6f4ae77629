"""Cycles in the customer's time zone, billing anchors, base-fee intervals, proration."""

from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise

import pytest

from billing_core.catalog import Product, Subscription
from billing_core.cycles import (
    base_fee_share,
    cycle,
    cycle_containing,
    cycle_number,
    interval,
    local_midnight,
    usage_window,
)
from billing_core.periods import BillingPeriod as P
from billing_core.pricing.lines import base_fee_line

D = Decimal


def sub(start: str, end: str | None = None, anchor: str = "calendar") -> Subscription:
    return Subscription(id="s", customer="c", product="p", start=start, end=end,
                        billing_anchor=anchor)


def product(base: str = "30", interval: str = "month", proration: str = "daily") -> Product:
    return Product(key="p", name="P", base_price=D(base), base_interval=interval,
                   proration=proration)


# --- time zones and daylight saving ------------------------------------------------------

def test_berlin_cycles_run_from_local_midnight_across_dst():
    march = cycle(sub("2026-01-01"), P(2026, 3), "Europe/Berlin")
    assert (march.start_utc, march.end_utc) == (datetime(2026, 2, 28, 23),
                                                datetime(2026, 3, 31, 22))
    assert (march.end_utc - march.start_utc).total_seconds() == 743 * 3600  # spring forward
    october = cycle(sub("2026-01-01"), P(2026, 10), "Europe/Berlin")
    assert (october.start_utc, october.end_utc) == (datetime(2026, 9, 30, 22),
                                                    datetime(2026, 10, 31, 23))
    assert (october.end_utc - october.start_utc).total_seconds() == 745 * 3600  # fall back


def test_new_york_cycles_across_dst():
    november = cycle(sub("2026-01-01"), P(2026, 11), "America/New_York")
    assert (november.start_utc, november.end_utc) == (datetime(2026, 11, 1, 4),
                                                      datetime(2026, 12, 1, 5))
    march = cycle(sub("2026-01-01"), P(2026, 3), "America/New_York")
    assert (march.start_utc, march.end_utc) == (datetime(2026, 3, 1, 5),
                                                datetime(2026, 4, 1, 4))


@pytest.mark.parametrize(("moment", "tz", "period"), [
    (datetime(2026, 9, 30, 22, 30), "Europe/Berlin", "2026-10"),     # 00:30 on 1 October
    (datetime(2026, 9, 30, 21, 59), "Europe/Berlin", "2026-09"),
    (datetime(2026, 10, 31, 22, 59), "Europe/Berlin", "2026-10"),    # 23:59 on 31 October
    (datetime(2026, 10, 31, 23, 0), "Europe/Berlin", "2026-11"),
    (datetime(2026, 11, 1, 3, 59), "America/New_York", "2026-10"),  # 23:59 EDT, 31 Oct
    (datetime(2026, 11, 1, 4, 0), "America/New_York", "2026-11"),
    (datetime(2026, 3, 8, 6, 30), "America/New_York", "2026-03"),   # the spring-forward day
    (datetime(2026, 10, 31, 23, 30), "UTC", "2026-10"),
])
def test_events_belong_to_the_cycle_of_their_local_day(moment, tz, period):
    assert str(cycle_containing(sub("2026-01-01"), moment, tz).period) == period
    window = usage_window(sub("2026-01-01"), P.parse(period), tz)
    assert window is not None and window[0] <= moment < window[1]


def test_a_day_that_starts_in_a_dst_gap_still_tiles_the_timeline():
    # Chile moves its clocks at local midnight: cycles still meet without gap or overlap.
    tz = "America/Santiago"
    cycles = [cycle(sub("2026-01-01"), P(2026, m), tz) for m in range(1, 13)]
    for a, b in pairwise(cycles):
        assert a.end_utc == b.start_utc


# --- anchors -------------------------------------------------------------------------------

def test_anniversary_cycles_clamp_to_short_months():
    s = sub("2026-01-31", anchor="anniversary")
    assert [(c.start, c.end) for c in (cycle(s, P(2026, m), "UTC") for m in (2, 3, 4))] == [
        (date(2026, 1, 31), date(2026, 2, 28)), (date(2026, 2, 28), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 4, 30))]


def test_an_anniversary_cycle_is_labelled_by_the_month_of_its_last_day():
    s = sub("2026-10-15", anchor="anniversary")
    assert usage_window(s, P(2026, 10), "UTC") is None         # Sep 15 - Oct 15: not active
    first = cycle(s, P(2026, 11), "UTC")
    assert (first.start, first.end) == (date(2026, 10, 15), date(2026, 11, 15))
    assert cycle_containing(s, datetime(2026, 11, 20), "UTC").period == P(2026, 12)


def test_the_first_of_the_month_anniversary_is_the_calendar():
    assert cycle(sub("2026-03-01", anchor="anniversary"), P(2026, 10), "UTC") == \
        cycle(sub("2026-03-01"), P(2026, 10), "UTC")


# --- base fees -----------------------------------------------------------------------------

def test_a_month_started_mid_cycle_is_prorated_by_days():
    s, p = sub("2026-10-14"), product("49", proration="daily")
    share = base_fee_share(s, p, cycle(s, P(2026, 10), "UTC"))
    assert share is not None and (share.days, share.of_days, share.prorated) == (18, 31, True)
    line = base_fee_line(p, share, "USD", "2026-10")
    assert line.amount == D("28.45")                         # 49 x 18 / 31 = 28.4516...
    assert line.detail and line.detail["proration"] == {
        "days": 18, "of_days": 31, "from": "2026-10-14", "to": "2026-11-01"}


def test_without_proration_the_fee_is_charged_in_full():
    s, p = sub("2026-10-14", "2026-10-20"), product("49", proration="none")
    share = base_fee_share(s, p, cycle(s, P(2026, 10), "UTC"))
    assert share is not None and not share.prorated
    assert base_fee_line(p, share, "USD", "2026-10").amount == D("49.00")


def test_an_end_inside_the_cycle_is_prorated_too():
    s, p = sub("2026-01-01", "2026-10-11"), product("31")
    share = base_fee_share(s, p, cycle(s, P(2026, 10), "UTC"))
    assert share is not None and share.days == 10
    assert base_fee_line(p, share, "USD", "2026-10").amount == D("10.00")


def test_a_quarterly_fee_is_billed_in_advance_on_the_first_active_month_of_the_quarter():
    s, p = sub("2026-11-14"), product("300", "quarter")
    assert interval(s, p, cycle(s, P(2026, 11), "UTC")).start == date(2026, 10, 1)
    shares = {m: base_fee_share(s, p, cycle(s, P.parse(m), "UTC"))
              for m in ("2026-11", "2026-12", "2027-01", "2027-02", "2027-04")}
    first = shares["2026-11"]
    assert first is not None and (first.days, first.of_days) == (48, 92)
    assert base_fee_line(p, first, "USD", "2026-11").amount == D("156.52")  # 300 x 48/92
    assert shares["2026-12"] is None and shares["2027-02"] is None
    assert shares["2027-01"] is not None and not shares["2027-01"].prorated
    assert shares["2027-04"] is not None


def test_a_yearly_anniversary_fee_comes_once_a_year():
    s, p = sub("2026-03-10", anchor="anniversary"), product("1200", "year")
    billed = [m for m in range(3, 15)
              if base_fee_share(s, p, cycle(s, P(2026, 1).shift(m), "UTC"))]
    assert billed == [3, 15][:1]   # the cycle Mar 10 - Apr 10 2026 (labelled 2026-04)
    share = base_fee_share(s, p, cycle(s, P(2026, 4), "UTC"))
    assert share is not None and share.interval.end == date(2027, 3, 10)


def test_the_local_midnight_of_a_day():
    assert local_midnight(date(2026, 7, 1), "Asia/Tokyo") == datetime(2026, 6, 30, 15)
    assert local_midnight(date(2026, 7, 1), "Pacific/Kiritimati") == datetime(2026, 6, 30, 10)


def test_discount_cycles_are_counted_from_the_start():
    s = sub("2026-10-14")
    numbers = [cycle_number(s, cycle(s, P(2026, 10).shift(k), "UTC"), s.start)
               for k in range(4)]
    assert numbers == [1, 2, 3, 4]
    assert cycle_number(s, cycle(s, P(2026, 10), "UTC"), date(2026, 12, 5)) == -1
