"""Properties of money and pricing, for any quantities and prices (Hypothesis)."""

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing_core.catalog import Charge, Product
from billing_core.documents.model import Document, Party
from billing_core.money import EXACT, minor_units, round_money
from tests.pricing.helpers import per_unit, product_lines

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLF"])
quantities = st.decimals(min_value=0, max_value=Decimal("1e15"), places=6,
                         allow_nan=False, allow_infinity=False)
thresholds = st.decimals(min_value=0, max_value=Decimal("1e14"), places=6,
                        allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=Decimal("1e6"), places=8,
                     allow_nan=False, allow_infinity=False)
amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=9,
                      allow_nan=False, allow_infinity=False)


@given(quantities, thresholds, prices, CURRENCIES)
def test_free_plus_chargeable_is_the_quantity(quantity, free, price, currency):
    priced = per_unit(quantity, free, price, currency)
    assert priced.free_units + priced.chargeable_units == quantity
    assert priced.free_units >= 0 and priced.chargeable_units >= 0
    assert priced.free_units <= free


@given(quantities, thresholds, prices, CURRENCIES)
def test_amount_is_the_rounded_product_of_chargeable_units_and_price(quantity, free, price,
                                                                     currency):
    priced = per_unit(quantity, free, price, currency)
    exact = EXACT.multiply(max(Decimal(0), quantity - free), price)
    assert priced.amount == round_money(exact, currency)
    # half-up to the minor unit: never more than half a minor unit away
    half = Decimal(1).scaleb(-minor_units(currency)) / 2
    assert abs(priced.amount - exact) <= half
    assert -priced.amount.as_tuple().exponent <= minor_units(currency)


@given(amounts, CURRENCIES)
def test_rounding_is_idempotent(amount, currency):
    once = round_money(amount, currency)
    assert round_money(once, currency) == once


@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=6), prices, CURRENCIES)
def test_the_total_is_the_sum_of_the_rounded_lines(charges, base, currency):
    product = Product(key="p", name="P", base_price=base,
                      charges=tuple(Charge(meter=f"m{i}", price_per_unit=p)
                                    for i, (_, p) in enumerate(charges)))
    lines = product_lines(product, {f"m{i}": q for i, (q, _) in enumerate(charges)},
                          currency)
    assert len(lines) == len(charges)
    doc = Document(document_type="invoice", subscription_id="s", customer_id="c",
                   customer=Party("C"), seller=Party("S"), product_key="p",
                   product_name="P", period="2026-10", period_start=date(2026, 10, 1),
                   period_end=date(2026, 11, 1), service_start=date(2026, 10, 1),
                   service_end=date(2026, 11, 1), currency=currency, lines=tuple(lines))
    assert doc.total == sum((line.amount for line in lines), Decimal(0))
    assert all(line.amount == round_money(line.amount, currency) for line in lines)
