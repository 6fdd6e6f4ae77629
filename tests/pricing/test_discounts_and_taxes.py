"""Minimums, discounts and taxes on whole invoices, in the documented order:
usage -> charge model -> minimums -> discounts -> taxes, each line rounded half-up."""

from __future__ import annotations

from copy import deepcopy
from decimal import Decimal
from typing import Any

import pytest

from billing_core.catalog import parse_catalog
from billing_core.documents.model import from_json, to_json
from billing_core.invoicing import invoice_document
from billing_core.periods import BillingPeriod
from billing_core.pricing.taxes import REVERSE_CHARGE_NOTE

D = Decimal
OCT = BillingPeriod(2026, 10)

BASE: dict[str, Any] = {
    "currency": "EUR",
    "seller": {"name": "Seller GmbH", "country": "DE", "tax_id": "DE123456789"},
    "taxes": {"rates": [{"country": "DE", "rate": "19", "name": "VAT"},
                        {"country": "FR", "rate": "20", "name": "TVA"},
                        {"country": "CA", "rate": "5", "name": "GST"},
                        {"country": "CA", "region": "QC", "rate": "9.975", "name": "QST"}]},
    "meters": [{"key": "calls", "name": "Calls", "event_name": "call",
                "aggregation": "count"},
               {"key": "gb", "name": "Storage", "event_name": "gb", "aggregation": "count"}],
    "products": [{"key": "p", "name": "Plan", "base_price": "100.00", "charges": [
        {"meter": "calls", "price_per_unit": "0.10"},
        {"meter": "gb", "price": {"model": "graduated", "tiers": [
            {"up_to": 10, "unit_price": "0"}, {"up_to": None, "unit_price": "1.005"}]}}]}],
    "customers": [{"id": "c", "name": "C", "email": "c@example.com", "country": "DE"}],
    "subscriptions": [{"id": "s", "customer": "c", "product": "p", "start": "2026-01-01"}],
}


def invoice(changes: dict[str, Any] | None = None, usage: dict[str, Any] | None = None,
            period: BillingPeriod = OCT, **customer: Any):
    document = deepcopy(BASE)
    for path, value in (changes or {}).items():
        target = document
        *parts, last = path.split(".")
        for part in parts:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    document["customers"][0].update(customer)
    catalog = parse_catalog(document)
    quantities = {k: D(v) for k, v in (usage or {"calls": 100, "gb": 20}).items()}
    return invoice_document(catalog, catalog.subscriptions[0], period, quantities, [], "D")


def amounts(doc) -> list[tuple[str, str]]:
    return [(line.kind, format(line.amount, "f")) for line in doc.lines]


def test_exclusive_tax_is_computed_per_line_and_summed():
    doc = invoice()
    # base 100.00, calls 10.00, storage 10 x 1.005 = 10.05
    assert amounts(doc) == [("base_fee", "100.00"), ("usage", "10.00"), ("usage", "10.05")]
    assert [t.amount for line in doc.lines for t in line.taxes] == \
        [D("19.00"), D("1.90"), D("1.91")]          # 10.05 x 19 % = 1.9095 -> 1.91
    assert doc.tax_total == D("22.81")              # per line; on the subtotal 22.8095 -> 22.81
    assert (doc.subtotal, doc.total) == (D("120.05"), D("142.86"))
    assert doc.tax_summary() == [{"name": "VAT", "rate": D(19), "category": "S",
                                  "base": D("120.05"), "amount": D("22.81")}]


def test_per_line_rounding_can_differ_from_rounding_the_sum():
    """Two lines of 0.02 at 19 %: 0.0038 -> 0.00 each, so no tax; 19 % of the 0.04
    subtotal would have been 0.0076 -> 0.01. The invoice says tax is per line."""
    doc = invoice({"products.0.base_price": "0.02",
                   "products.0.charges.0.price_per_unit": "0.02"},
                  usage={"calls": 1, "gb": 0})
    assert [t.amount for line in doc.lines for t in line.taxes] == [D("0.00")] * 3
    assert doc.subtotal == D("0.04") and doc.tax_total == 0


def test_inclusive_prices_contain_the_tax():
    doc = invoice({"taxes.prices": "inclusive"})
    assert doc.tax_mode == "inclusive"
    # 100.00 contains 100 x 19/119 = 15.966... -> 15.97
    assert doc.lines[0].taxes[0].amount == D("15.97")
    assert doc.total == doc.subtotal == D("120.05")
    assert doc.net_total == doc.total - doc.tax_total


def test_stacked_regional_taxes():
    doc = invoice(country="CA", region="QC")
    assert [(t.name, t.rate, t.amount) for t in doc.lines[0].taxes] == [
        ("GST", D(5), D("5.00")), ("QST", D("9.975"), D("9.98"))]
    ontario = invoice(country="CA", region="ON")
    assert [t.name for t in ontario.lines[0].taxes] == ["GST"]


def test_reverse_charge_for_an_eu_business_customer_in_another_member_state():
    doc = invoice(country="FR", tax_id="FR40303265045")
    assert all(t.rate == 0 and t.category == "AE" for line in doc.lines for t in line.taxes)
    assert doc.tax_total == 0 and doc.total == doc.subtotal
    assert doc.tax_note == REVERSE_CHARGE_NOTE
    # a consumer in France (no tax id) pays French VAT; a German business pays German VAT
    assert invoice(country="FR").lines[0].taxes[0].rate == D(20)
    assert invoice(country="DE", tax_id="DE999999999").lines[0].taxes[0].rate == D(19)


def test_no_matching_rate_means_no_tax_and_exempt_customers_pay_none():
    us = invoice(country="US")
    assert us.tax_total == 0 and all(not line.taxes for line in us.lines)
    exempt = invoice(tax_exempt=True)
    assert exempt.tax_total == 0 and exempt.lines[0].taxes[0].category == "E"


@pytest.mark.parametrize(("discount", "expected"), [
    ({"percent_off": "10", "duration": "forever"}, "-12.01"),     # 10 % of 120.05 = 12.005
    ({"amount_off": "50", "duration": "forever"}, "-50.00"),
    ({"amount_off": "500", "duration": "forever"}, "-120.05"),    # never below zero
    ({"percent_off": "50", "duration": "forever", "applies_to": ["calls"]}, "-5.00"),
    ({"percent_off": "100", "duration": "forever", "applies_to": ["base_fee"]}, "-100.00"),
])
def test_discounts(discount, expected):
    doc = invoice({"subscriptions.0.discounts": [discount]})
    assert doc.lines[-1].kind == "discount"
    assert format(doc.lines[-1].amount, "f") == expected
    assert doc.subtotal >= 0


def test_discount_comes_before_tax_and_is_taxed_as_a_line():
    doc = invoice({"subscriptions.0.discounts": [{"percent_off": "10",
                                                  "duration": "forever"}]})
    discount = doc.lines[-1]
    assert discount.taxes[0].amount == D("-2.28")   # -12.01 x 19 % = -2.2819
    assert doc.subtotal == D("108.04")
    assert doc.tax_total == D("19.00") + D("1.90") + D("1.91") - D("2.28")
    assert doc.total == doc.subtotal + doc.tax_total


def test_discount_durations_count_cycles_from_the_start():
    once = {"subscriptions.0.discounts": [{"amount_off": "10", "duration": "once"}],
            "subscriptions.0.start": "2026-09-01"}
    assert invoice(once, period=BillingPeriod(2026, 9)).lines[-1].kind == "discount"
    assert invoice(once, period=OCT).lines[-1].kind != "discount"
    three = {"subscriptions.0.discounts": [{"amount_off": "10", "duration": "repeating",
                                            "cycles": 3}],
             "subscriptions.0.start": "2026-08-15"}
    kinds = [invoice(three, period=BillingPeriod(2026, m)).lines[-1].kind
             for m in (8, 9, 10, 11)]
    assert kinds == ["discount", "discount", "discount", "usage"]


def test_two_discounts_apply_in_order_each_on_what_is_left():
    doc = invoice({"subscriptions.0.discounts": [
        {"amount_off": "20.05", "duration": "forever"},
        {"percent_off": "50", "duration": "forever", "name": "Half"}]})
    assert amounts(doc)[-2:] == [("discount", "-20.05"), ("discount", "-50.00")]


def test_minimums_come_before_discounts():
    doc = invoice({"products.0.charges.0.minimum_amount": "25.00",
                   "products.0.minimum_spend": "60.00",
                   "subscriptions.0.discounts": [{"percent_off": "10",
                                                  "duration": "forever"}]})
    # calls 10.00 + true-up 15.00; storage 10.05; charges 35.05 < 60 -> spend true-up 24.95
    assert amounts(doc) == [("base_fee", "100.00"), ("usage", "10.00"), ("minimum", "15.00"),
                            ("usage", "10.05"), ("minimum", "24.95"), ("discount", "-16.00")]


def test_minimums_are_prorated_like_the_base_fee():
    doc = invoice({"products.0.minimum_spend": "31.00", "products.0.proration": "daily",
                   "subscriptions.0.start": "2026-10-22"}, usage={"calls": 0, "gb": 0})
    # active 10 of 31 days: base 100 x 10/31 = 32.26; minimum spend 31 x 10/31 = 10.00
    assert amounts(doc) == [("base_fee", "32.26"), ("usage", "0.00"), ("usage", "0.00"),
                            ("minimum", "10.00")]


@pytest.mark.parametrize(("currency", "base", "tax", "total"), [
    ("JPY", "1000", "190", "1190"),
    ("KWD", "10.005", "1.901", "11.906"),
])
def test_zero_and_three_decimal_currencies(currency, base, tax, total):
    doc = invoice({"currency": currency, "products.0.base_price": base,
                   "products.0.charges.0.price_per_unit": "0.0123",
                   "products.0.charges.1.price.tiers.1.unit_price": "0"},
                  usage={"calls": 1, "gb": 0})
    assert doc.currency == currency
    assert format(doc.lines[0].taxes[0].amount, "f") == tax
    data = to_json(doc)
    # JPY: 0.0123 -> 0; KWD: 0.0123 -> 0.012 (tax 0.00228 -> 0.002)
    assert data["total"] == format(D(total) + (D("0.014") if currency == "KWD" else 0), "f")
    assert from_json(data) == doc


def test_a_fee_with_more_decimals_than_the_currency_is_refused():
    from billing_core.catalog import CatalogError

    with pytest.raises(CatalogError) as error:
        invoice({"currency": "JPY", "products.0.base_price": "10.5"})
    assert "products[0].base_price: 10.5 is not an amount in JPY, which has no decimal " \
           "places" in str(error.value)


def test_products_priced_in_another_currency():
    doc = invoice({"products.0.currency": "CHF"})
    assert doc.currency == "CHF"


def test_the_json_carries_the_breakdown():
    doc = invoice({"subscriptions.0.discounts": [{"percent_off": "10",
                                                  "duration": "forever"}]})
    data = to_json(doc)
    assert data["taxes"] == [{"name": "VAT", "rate": "19", "category": "S",
                              "base": "108.04", "amount": "20.53"}]
    assert data["tax_total"] == "20.53" and data["total"] == "128.57"
    storage = data["lines"][2]
    assert [t["amount"] for t in storage["detail"]["tiers"]] == ["0", "10.05"]
    assert data["lines"][-1]["detail"]["percent_off"] == "10"
    assert from_json(data) == doc
