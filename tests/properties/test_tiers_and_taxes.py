"""Properties of the price models, discounts and taxes for any tiers, quantities and
currencies (Hypothesis): tier boundaries, monotonicity, rounding, never below zero."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from billing_core.catalog import Discount
from billing_core.documents.model import Line
from billing_core.money import EXACT, minor_units, percent_of, round_money
from billing_core.pricing.discounts import discount_lines
from billing_core.pricing.taxes import Rate, TaxTreatment, line_taxes
from tests.pricing.helpers import priced

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
prices = st.decimals(min_value=0, max_value=Decimal("1000"), places=6)
fees = st.decimals(min_value=0, max_value=Decimal("1000"), places=0)
quantities = st.decimals(min_value=0, max_value=Decimal("100000"), places=4)


@st.composite
def tiers(draw) -> list[dict[str, object]]:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=50000), min_size=0,
                                 max_size=5)))
    found: list[dict[str, object]] = [
        {"up_to": b, "unit_price": draw(prices), "flat_fee": draw(fees)} for b in bounds]
    found.append({"up_to": None, "unit_price": draw(prices), "flat_fee": draw(fees)})
    return found


def half(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency)) / 2


@given(tiers(), quantities, quantities)
def test_graduated_never_decreases_with_more_usage(t, a, b):
    low, high = sorted((a, b))
    model = {"model": "graduated", "tiers": t}
    assert priced(model, low).priced.amount <= priced(model, high).priced.amount


@given(tiers(), quantities)
def test_graduated_tiers_hold_every_unit_once(t, q):
    detail = priced({"model": "graduated", "tiers": t}, q).priced.detail
    assert sum(Decimal(row["units"]) for row in detail["tiers"]) == q
    total = sum((Decimal(row["amount"]) for row in detail["tiers"]), Decimal(0))
    assert total == priced({"model": "graduated", "tiers": t}, q).priced.amount


@given(tiers(), st.data())
def test_graduated_at_and_just_past_a_boundary(t, data):
    assume(len(t) > 1)
    i = data.draw(st.integers(min_value=0, max_value=len(t) - 2))
    bound = Decimal(t[i]["up_to"])  # type: ignore[arg-type]
    model = {"model": "graduated", "tiers": t}
    at = priced(model, bound).priced.amount
    past = priced(model, bound + Decimal("0.0001")).priced.amount
    step = EXACT.add(EXACT.multiply(Decimal("0.0001"), Decimal(t[i + 1]["unit_price"])),
                     Decimal(t[i + 1]["flat_fee"]))
    assert past - at == step           # the next tier starts right after the bound


@given(tiers(), quantities)
def test_volume_prices_every_unit_in_the_tier_reached(t, q):
    result = priced({"model": "volume", "tiers": t}, q).priced
    tier = next(x for x in t if x["up_to"] is None or q <= Decimal(x["up_to"]))
    assert result.amount == q * Decimal(tier["unit_price"]) + Decimal(tier["flat_fee"])


@given(prices, fees, quantities)
def test_one_open_tier_is_a_per_unit_price_plus_its_flat_fee(unit, flat, q):
    tier = [{"up_to": None, "unit_price": unit, "flat_fee": flat}]
    expected = EXACT.add(EXACT.multiply(q, unit), flat)
    assert priced({"model": "graduated", "tiers": tier}, q).priced.amount == expected
    assert priced({"model": "volume", "tiers": tier}, q).priced.amount == expected


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("10000"), places=3),
       prices, quantities, CURRENCIES)
def test_a_started_package_is_a_whole_package(size, price, q, currency):
    result = priced({"model": "package", "package_size": size, "package_price": price}, q,
                    currency)
    packages = (q / size).to_integral_value(rounding=ROUND_CEILING) if q > 0 else 0
    assert result.priced.detail["packages"] == packages
    assert (packages - 1) * size < q <= packages * size or q == 0
    assert abs(result.amount - packages * price) <= half(currency)


@given(st.sampled_from(["graduated", "volume"]), tiers(), quantities, CURRENCIES)
def test_line_amounts_are_the_exact_amount_rounded_half_up_once(kind, t, q, currency):
    result = priced({"model": kind, "tiers": t}, q, currency)
    assert result.amount == round_money(result.priced.amount, currency)
    assert abs(result.amount - result.priced.amount) <= half(currency)


def _lines(amounts: list[Decimal]) -> list[Line]:
    return [Line(kind="usage", description=f"m{i}", amount=a, meter=f"m{i}")
            for i, a in enumerate(amounts)]


money = st.decimals(min_value=0, max_value=Decimal("100000"), places=2)


@given(st.lists(money, min_size=1, max_size=5),
       st.lists(st.one_of(
           st.decimals(min_value=Decimal("0.01"), max_value=100, places=2).map(
               lambda p: Discount(percent_off=p, duration="forever")),
           money.filter(lambda a: a > 0).map(
               lambda a: Discount(amount_off=a, duration="forever"))), max_size=4))
def test_discounts_never_take_an_invoice_below_zero(amounts, discounts):
    lines = _lines(amounts)
    taken = discount_lines([(d, 1) for d in discounts], lines, "USD", "2026-10")
    total = sum(amounts, Decimal(0)) + sum((d.amount for d in taken), Decimal(0))
    assert total >= 0
    assert all(d.amount < 0 and d.amount == round_money(d.amount, "USD") for d in taken)


@given(st.decimals(min_value=-100000, max_value=100000, places=3),
       st.lists(st.decimals(min_value=0, max_value=30, places=3), min_size=1, max_size=3),
       st.sampled_from(["exclusive", "inclusive"]), CURRENCIES)
def test_tax_per_line_is_within_half_a_minor_unit_of_exact(amount, rates, mode, currency):
    amount = round_money(amount, currency)
    how = TaxTreatment(mode, tuple(Rate(f"T{i}", r, "S") for i, r in enumerate(rates)))
    taxes = line_taxes(amount, how, currency)
    for tax, rate in zip(taxes, rates, strict=True):
        exact = percent_of(amount, rate) if mode == "exclusive" else \
            amount * rate / (100 + sum(rates))
        assert abs(tax.amount - exact) <= half(currency)
        assert tax.amount == round_money(tax.amount, currency)


def test_two_discounts_rounding_half_cents_up_stop_at_zero():
    """50 % of 0.01 rounds up to 0.01; an amount off after it finds nothing left."""
    taken = discount_lines([(Discount(percent_off=Decimal(50), duration="forever"), 1),
                            (Discount(amount_off=Decimal("1.00"), duration="forever"), 1)],
                           _lines([Decimal("0.01")]), "USD", "2026-10")
    assert [d.amount for d in taken] == [Decimal("-0.01")]


def test_a_percent_off_after_a_fraction_of_a_cent_was_taken_is_still_whole_money():
    """0.01 % of 0.01 rounds to nothing (no line) but leaves 0.009999 of the charge;
    50.01 % of that rounds up to 0.01, more than the exact base: the line is 0.01, never
    the unrounded 0.009999 (found by the Hypothesis property test above)."""
    taken = discount_lines([(Discount(percent_off=Decimal("0.01"), duration="forever"), 1),
                            (Discount(percent_off=Decimal("50.01"), duration="forever"), 1)],
                           _lines([Decimal("0.01")]), "USD", "2026-10")
    assert [d.amount for d in taken] == [Decimal("-0.01")]
