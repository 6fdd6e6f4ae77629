"""The Factur-X XML of taxed invoices: categories, rates, breakdown and totals, valid
against the EN 16931 schema."""

from datetime import date
from decimal import Decimal

import facturx
from lxml import etree

from billing_core.einvoice.facturx import cii_xml
from tests.einvoice.test_facturx import NS
from tests.pricing.test_discounts_and_taxes import invoice

D = Decimal


def xml(doc) -> etree._Element:
    issued = doc.issued("INV-2026-000009", date(2026, 11, 4), date(2026, 12, 4))
    data = cii_xml(issued)
    assert facturx.xml_check_xsd(data, flavor="factur-x", level="en16931")
    return etree.fromstring(data)


def values(root, path):
    return [e.text for e in root.findall(path, NS)]


SETTLEMENT = ".//ram:ApplicableHeaderTradeSettlement"
TAX = f"{SETTLEMENT}/ram:ApplicableTradeTax"
SUMMARY = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def test_standard_rate_lines_and_breakdown():
    doc = invoice({"subscriptions.0.discounts": [{"percent_off": "10",
                                                  "duration": "forever"}]},
                  city="Berlin", tax_id="DE999999999")
    root = xml(doc)
    assert values(root, ".//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/"
                        "ram:CategoryCode") == ["S"] * 4
    assert values(root, f"{TAX}/ram:CategoryCode") == ["S"]
    assert values(root, f"{TAX}/ram:RateApplicablePercent") == ["19"]
    assert values(root, f"{TAX}/ram:BasisAmount") == ["108.04"]
    assert values(root, f"{TAX}/ram:CalculatedAmount") == ["20.53"]
    assert values(root, f"{SUMMARY}/ram:TaxBasisTotalAmount") == ["108.04"]
    assert values(root, f"{SUMMARY}/ram:TaxTotalAmount") == ["20.53"]
    assert values(root, f"{SUMMARY}/ram:GrandTotalAmount") == ["128.57"]
    # the discount is a line with a negative net amount
    assert values(root, ".//ram:SpecifiedTradeSettlementLineMonetarySummation/"
                        "ram:LineTotalAmount")[-1] == "-12.01"


def test_reverse_charge_is_category_ae_with_its_exemption_code():
    root = xml(invoice(country="FR", tax_id="FR40303265045"))
    assert values(root, f"{TAX}/ram:CategoryCode") == ["AE"]
    assert values(root, f"{TAX}/ram:ExemptionReasonCode") == ["VATEX-EU-AE"]
    assert values(root, f"{TAX}/ram:CalculatedAmount") == ["0.00"]
    assert any("Reverse charge" in (t or "") for t in values(root, ".//ram:IncludedNote/"
                                                                   "ram:Content"))


def test_inclusive_prices_give_net_lines():
    doc = invoice({"taxes.prices": "inclusive"})
    root = xml(doc)
    assert values(root, f"{SUMMARY}/ram:GrandTotalAmount") == ["120.05"]
    net, tax = values(root, f"{SUMMARY}/ram:TaxBasisTotalAmount")[0], \
        values(root, f"{SUMMARY}/ram:TaxTotalAmount")[0]
    assert D(net) + D(tax) == D("120.05")
    assert values(root, f"{TAX}/ram:BasisAmount") == [net]
