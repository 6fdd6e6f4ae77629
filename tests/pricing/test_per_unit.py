"""The per-unit price (`price_per_unit` + `free_threshold`): the reference documentation's
examples, exactly."""

from decimal import Decimal

import pytest

from billing_core.catalog import Charge, Product
from billing_core.pricing import ChargeUsage, price_charge
from tests.pricing.helpers import charge, per_unit, product_lines

D = Decimal


@pytest.mark.parametrize(("quantity", "free", "price", "amount"), [
    (2500, 1000, "0.02", "30.00"),     # 2,500 calls with 1,000 free at 0.02
    (250, 100, "0.50", "75.00"),       # 250 units with 100 free at 0.50
    (1000, 0, "0.50", "500.00"),
    (500, 0, "0.50", "250.00"),
    (100, 0, "0.50", "50.00"),
])
def test_reference_examples(quantity, free, price, amount):
    priced = per_unit(D(quantity), D(free), D(price), "USD")
    assert priced.amount == D(amount)
    assert str(priced.amount) == amount


def test_usage_below_the_free_threshold_costs_nothing():
    priced = per_unit(D(400), D(1000), D("0.02"), "USD")
    assert (priced.chargeable_units, priced.free_units, priced.amount) == (0, 400, D("0.00"))


def test_many_decimal_prices_are_exact_and_rounded_half_up_per_line():
    # 12,345 tokens at 0.00004 = 0.4938 -> 0.49; at 0.001 = 12.345 -> 12.35 (half-up)
    assert per_unit(D(12345), D(0), D("0.00004"), "USD").amount == D("0.49")
    assert per_unit(D(12345), D(0), D("0.001"), "USD").amount == D("12.35")
    assert per_unit(D(12345), D(0), D("0.001"), "JPY").amount == D("12")
    assert per_unit(D(12345), D(0), D("0.0001"), "KWD").amount == D("1.235")


def test_total_is_the_sum_of_rounded_lines():
    product = Product(key="p", name="P", charges=(
        Charge(meter="a", price_per_unit=D("0.005")),  # 1 x 0.005 = 0.005 -> 0.01
        Charge(meter="b", price_per_unit=D("0.005")),
    ))
    lines = product_lines(product, {"a": 1, "b": 1})
    assert [line.amount for line in lines] == [D("0.01"), D("0.01")]
    assert sum(line.amount for line in lines) == D("0.02")  # not 0.01 from 0.005 + 0.005


def test_floats_never_reach_pricing():
    with pytest.raises(TypeError):
        price_charge(charge(per_unit="0.02", free=1000),
                     ChargeUsage(2500.0), "USD")  # type: ignore[arg-type]
