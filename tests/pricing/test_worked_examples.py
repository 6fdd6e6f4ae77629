"""Each price model against worked examples from the peers' documentation and test suites,
exactly. The source of each example is named; where a peer's result is shown before
rounding, the invoice line (rounded half-up to the cent) is checked too.
(End-to-end versions, with events through metering on SQLite and PostgreSQL, are in
tests/services/test_pricing_end_to_end.py.)
"""

from decimal import Decimal

import pytest

from billing_core.catalog import Product
from tests.pricing.helpers import charge, priced, product_lines

D = Decimal

# Stripe docs, "Tiered pricing": units 1-5 at $7, 6-10 at $6.50, 11+ at $6.
STRIPE_TIERS = [{"up_to": 5, "unit_price": "7"}, {"up_to": 10, "unit_price": "6.50"},
                {"up_to": None, "unit_price": "6"}]


@pytest.mark.parametrize(("quantity", "amount"), [
    (1, "7.00"), (5, "35.00"), (6, "39.00"), (20, "120.00"), (25, "150.00")])
def test_stripe_volume_tiers(quantity, amount):
    """Stripe docs, volume-based tiers: the tier reached prices every unit."""
    assert priced({"model": "volume", "tiers": STRIPE_TIERS}, quantity).amount == D(amount)


@pytest.mark.parametrize(("quantity", "amount"), [
    (1, "7.00"), (5, "35.00"), (6, "41.50"), (20, "127.50"), (25, "157.50")])
def test_stripe_graduated_tiers(quantity, amount):
    """Stripe docs, graduated tiers: 6 units = 5 x $7 + 1 x $6.50 = $41.50."""
    assert priced({"model": "graduated", "tiers": STRIPE_TIERS}, quantity).amount == D(amount)


def test_stripe_graduated_breakdown_is_on_the_line():
    result = priced({"model": "graduated", "tiers": STRIPE_TIERS}, 20)
    tiers = result.priced.detail["tiers"]
    assert [(t["from"], t["up_to"], t["units"], t["amount"]) for t in tiers] == [
        ("0", "5", "5", "35"), ("5", "10", "5", "32.5"), ("10", None, "10", "60")]


@pytest.mark.parametrize(("quantity", "amount"), [
    (1, "10.00"), (3, "10.00"), (5, "10.00"), (6, "20.00"), (7, "20.00")])
def test_stripe_package_rounds_up(quantity, amount):
    """Stripe docs, quantity transformation: $10 for every 5 users or portion thereof."""
    model = {"model": "package", "package_size": 5, "package_price": "10"}
    assert priced(model, quantity).amount == D(amount)


def test_stripe_car_rental_per_started_hour():
    """Stripe docs, transform quantities: $10 per hour, usage in minutes, rounded up: 150
    minutes are charged as 3 hours, $30."""
    model = {"model": "package", "package_size": 60, "package_price": "10"}
    assert priced(model, 150).amount == D("30.00")


def test_lago_package_with_free_units():
    """Lago docs, package: $5 per 100 units, first 100 free: 201 units cost $0 + $5 + $5."""
    model = {"model": "package", "package_size": 100, "package_price": "5"}
    result = priced(model, 201, free=100)
    assert result.amount == D("10.00")
    assert (result.free_units, result.chargeable_units) == (100, 101)
    assert result.priced.detail["packages"] == 2


def test_lago_volume_tiers_with_flat_fees():
    """Lago docs, volume: 0-10,000 at $0.0010, 10,001-50,000 at $0.0008, 50,001-100,000 at
    $0.0006, above at $0.0004, each tier with a $10 flat fee: 65,000 units cost
    65,000 x $0.0006 + $10 = $49."""
    model = {"model": "volume", "tiers": [
        {"up_to": 10000, "unit_price": "0.0010", "flat_fee": "10"},
        {"up_to": 50000, "unit_price": "0.0008", "flat_fee": "10"},
        {"up_to": 100000, "unit_price": "0.0006", "flat_fee": "10"},
        {"up_to": None, "unit_price": "0.0004", "flat_fee": "10"}]}
    assert priced(model, 65000).amount == D("49.00")
    assert priced(model, 10000).amount == D("20.00")
    assert priced(model, 10001).amount == D("18.00")    # 10,001 x 0.0008 + 10 = 18.0008


def test_lago_graduated_flat_fee_of_the_first_tier_is_charged_without_usage():
    """Lago's GraduatedService: the first range is always priced, with its flat amount."""
    model = {"model": "graduated", "tiers": [
        {"up_to": 10, "unit_price": "1", "flat_fee": "2"},
        {"up_to": None, "unit_price": "0.5", "flat_fee": "3"}]}
    assert priced(model, 0).amount == D("2.00")
    assert priced(model, 10).amount == D("12.00")
    assert priced(model, 11).amount == D("15.50")   # 2 + 10 + 3 + 0.5


# OpenMeter rating tests (openmeter/billing/rating/service/rate/tiered*_test.go).
OPENMETER_GRADUATED = [{"up_to": 5, "flat_fee": "100", "unit_price": "0"},
                       {"up_to": 10, "flat_fee": "50"},
                       {"up_to": 15, "unit_price": "10"},
                       {"up_to": None, "unit_price": "5"}]


@pytest.mark.parametrize(("quantity", "amount"), [
    ("0", "100"), ("3", "100"), ("5", "100"), ("5.001", "150"), ("7", "150"), ("12", "170"),
    ("22", "235")])
def test_openmeter_graduated_totals(quantity, amount):
    """OpenMeter: "If there's no usage in the first tier we need to bill the flat fee
    regardless"; 22 units = 100 + 50 + 5 x 10 + 7 x 5 = 235."""
    model = {"model": "graduated", "tiers": OPENMETER_GRADUATED}
    assert priced(model, D(quantity)).amount == D(amount)


OPENMETER_VOLUME = [{"up_to": 5, "flat_fee": "100"}, {"up_to": 10, "flat_fee": "150"},
                    {"up_to": 15, "unit_price": "10"}, {"up_to": None, "unit_price": "5"}]


@pytest.mark.parametrize(("quantity", "amount"), [
    (0, "100"), (3, "100"), (5, "100"), (14, "140"), (15, "150"), (16, "80"), (100, "500")])
def test_openmeter_volume(quantity, amount):
    model = {"model": "volume", "tiers": OPENMETER_VOLUME}
    assert priced(model, quantity).amount == D(amount)


@pytest.mark.parametrize(("quantity", "minimum", "maximum", "lines"), [
    (0, "150", None, ["100.00", "50.00"]),      # "no usage, min spend": 100 + true-up 50
    (100, "100", None, ["500.00"]),             # "usage over, min spend": no true-up
    (5, "150", None, ["100.00", "50.00"]),      # "usage less than min spend"
    (5, "100", None, ["100.00"]),               # "usage equals min spend"
    (5, None, "100", ["100.00"]),               # "usage eq max spend"
    (7, None, "125", ["150.00", "-25.00"]),     # "usage above max spend": capped at 125
])
def test_openmeter_volume_with_minimum_and_maximum_spend(quantity, minimum, maximum, lines):
    product = Product.model_validate({"key": "p", "name": "P", "charges": [
        {"meter": "m", "price": {"model": "volume", "tiers": OPENMETER_VOLUME},
         "minimum_amount": minimum, "maximum_amount": maximum}]})
    result = product_lines(product, {"m": quantity})
    assert [format(line.amount, "f") for line in result] == lines


def test_openmeter_package():
    """OpenMeter package tests: 10 units per package at $15; no usage costs nothing, but a
    minimum spend of $100 is still billed."""
    model = {"model": "package", "package_size": 10, "package_price": "15"}
    assert priced(model, 0).amount == 0
    assert priced(model, 10).amount == D("15.00")
    assert priced(model, D("10.5")).amount == D("30.00")
    product = Product.model_validate({"key": "p", "name": "P", "charges": [
        {"meter": "m", "price": model, "minimum_amount": "100"}]})
    assert [(line.kind, line.amount) for line in product_lines(product, {"m": 0})] == [
        ("usage", D("0.00")), ("minimum", D("100.00"))]


# Lago's PercentageService spec: rate 1.3 %, fixed fee $2 per event, four events summing to
# 800 whose running totals are 50, 150, 400 (the free allowance is measured by metering;
# here it is given as measured: free_amount and free_events).
@pytest.mark.parametrize(("free_amount", "free_events", "amount"), [
    ("250", 2, "11.15"),    # free: 3 events / 250 -> 250 free, 2 free events
    ("400", 3, "7.20"),     # free: 3 events only -> the first 3 events' 400
    ("0", 0, "18.40"),      # no free units: 800 x 1.3 % + 4 x 2
])
def test_lago_percentage(free_amount, free_events, amount):
    model = {"model": "percentage", "rate": "1.3", "fixed_fee": "2"}
    result = priced(model, 800, events=4, free_amount=free_amount, free_events=free_events)
    assert result.amount == D(amount)


def test_lago_percentage_small_amount_and_zero_rate():
    """Lago spec: 4 units at 2.9 % = 0.116 (0.12 on the invoice); rate 0 with a $2 fee
    on 4 events = 8; nothing at all for a total of 0 (no fee either)."""
    assert priced({"model": "percentage", "rate": "2.9"}, 4, events=4).priced.amount == \
        D("0.116")
    assert priced({"model": "percentage", "rate": "2.9"}, 4, events=4).amount == D("0.12")
    assert priced({"model": "percentage", "rate": "0", "fixed_fee": "2"}, 800,
                  events=4).amount == D("8.00")
    assert priced({"model": "percentage", "rate": "1.3", "fixed_fee": "2"}, 0,
                  events=4).amount == 0


def test_the_issue_percentage_example():
    """2.9 % + 0.30 per payment: 3 payments of 100.00 = 8.70 + 0.90 = 9.60, topped up to
    the 10.00 minimum."""
    product = Product.model_validate({"key": "p", "name": "P", "charges": [
        {"meter": "m", "price": {"model": "percentage", "rate": "2.9", "fixed_fee": "0.30",
                                 "free_units": 0}, "minimum_amount": "10.00"}]})
    from billing_core.pricing import ChargeUsage
    from billing_core.pricing.lines import charge_lines
    from tests.pricing.helpers import FULL, meters
    lines = charge_lines(product, meters("m"), {"m": ChargeUsage(D(300), 3)}, "USD",
                         "2026-10", FULL)
    assert [(line.kind, line.amount) for line in lines] == [
        ("usage", D("9.60")), ("minimum", D("0.40"))]


def test_the_issue_package_example():
    """0.04 USD per 1,000 tokens: 1,234,567 tokens are 1,235 packages = 49.40."""
    model = {"model": "package", "package_size": 1000, "package_price": "0.04"}
    assert priced(model, 1234567).amount == D("49.40")
    assert priced(model, 1000).amount == D("0.04")
    assert priced(model, 1001).amount == D("0.08")


def test_per_unit_short_form_and_long_form_agree():
    short = charge(per_unit="0.02", free=1000)
    long = charge({"model": "per_unit", "unit_price": "0.02"}, free=1000)
    assert short.pricing == long.pricing
