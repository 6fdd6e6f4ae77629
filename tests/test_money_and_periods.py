from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_core.money import minor_units, round_money, to_decimal
from billing_core.periods import BillingPeriod, InvalidPeriod


@pytest.mark.parametrize(("currency", "digits"), [("USD", 2), ("JPY", 0), ("KWD", 3),
                                                  ("EUR", 2)])
def test_minor_units_come_from_babel(currency, digits):
    assert minor_units(currency) == digits


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("2.345", "USD", "2.35"), ("2.344", "USD", "2.34"), ("-2.345", "USD", "-2.35"),
    ("0.005", "USD", "0.01"), ("1234.5", "JPY", "1235"), ("1.0005", "KWD", "1.001"),
])
def test_rounding_is_half_up_to_minor_units(amount, currency, expected):
    result = round_money(Decimal(amount), currency)
    assert str(result) == expected


def test_floats_are_refused():
    with pytest.raises(TypeError):
        to_decimal(0.1)
    assert to_decimal("0.1") == Decimal("0.1")


def test_period_is_half_open_calendar_month():
    p = BillingPeriod.parse("2026-12")
    assert (p.start, p.end) == (datetime(2026, 12, 1), datetime(2027, 1, 1))
    assert str(BillingPeriod.parse("2026-02")) == "2026-02"


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "2026/10", "", "2026-00"])
def test_bad_periods_are_refused(bad):
    with pytest.raises(InvalidPeriod, match="YYYY-MM"):
        BillingPeriod.parse(bad)


def test_last_closed_month_is_the_one_just_ended():
    assert str(BillingPeriod.last_closed(datetime(2026, 11, 1, 3, tzinfo=UTC))) == "2026-10"
    assert str(BillingPeriod.last_closed(datetime(2027, 1, 1, 3, tzinfo=UTC))) == "2026-12"
