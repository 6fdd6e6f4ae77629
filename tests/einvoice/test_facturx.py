"""Factur-X e-invoices: the XML embedded in the PDF/A-3 is read back out, validated against
the EN 16931 schema, and checked against the invoice's JSON: totals, lines, parties."""

import hashlib
import io
import json
from datetime import datetime
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from billing_core.catalog import CatalogError
from billing_core.clock import FixedClock
from billing_core.periods import BillingPeriod
from billing_core.render.batch import render_batch
from billing_core.services.documents import credit_invoice
from billing_core.services.finalizing import finalize_period
from billing_core.services.rendering import render_documents
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, ingest, parse_catalog, write_jsonl
from tests.delivery.test_delivery import catalog

NOV_10 = FixedClock(datetime(2026, 11, 10, 9, 0))
NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"}


@pytest.fixture
def issued(engine, tmp_path):
    apply(engine, catalog())
    ingest(engine, [write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"b{i}", "customer_id": "cus_b", "event_name": "api.call",
         "timestamp": "2026-10-05T00:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}} for i in range(2500)] + [
        {"event_id": "t1", "customer_id": "cus_b", "event_name": "llm.completion",
         "timestamp": "2026-10-06T00:00:00Z", "metadata": {"tokens": 1610612736}}])])
    finalize_period(SqlUnitOfWork(engine), NOV_10, BillingPeriod.parse("2026-10"))
    render_documents(SqlUnitOfWork(engine), NOV_10, tmp_path / "out", render_batch,
                     periods=["2026-10"])
    return engine, tmp_path / "out" / "2026-10"


def xml_of(pdf: bytes) -> etree._Element:
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    return etree.fromstring(xml)


def text(root, path):
    return root.find(path, NS).text


def test_the_embedded_xml_matches_the_invoice(issued):
    _, folder = issued
    pdf = (folder / "INV-2026-000002.pdf").read_bytes()
    root = xml_of(pdf)
    data = json.loads((folder / "INV-2026-000002.json").read_text())
    assert data["einvoice"] == "factur-x" and data["customer_id"] == "cus_b"
    doc = "rsm:ExchangedDocument/"
    settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
    agreement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/"
    assert text(root, doc + "ram:ID") == "INV-2026-000002"
    assert text(root, doc + "ram:TypeCode") == "380"
    assert text(root, doc + "ram:IssueDateTime/udt:DateTimeString") == "20261110"
    assert text(root, settlement + "ram:InvoiceCurrencyCode") == "USD"
    sums = settlement + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert text(root, sums + "ram:LineTotalAmount") == data["subtotal"]
    assert text(root, sums + "ram:GrandTotalAmount") == data["total"]
    assert text(root, sums + "ram:DuePayableAmount") == data["amount_due"]
    assert text(root, settlement + "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/"
                                   "udt:DateTimeString") == "20261210"
    seller, buyer = agreement + "ram:SellerTradeParty/", agreement + "ram:BuyerTradeParty/"
    assert text(root, seller + "ram:Name") == "Northwind GmbH"
    assert text(root, seller + "ram:SpecifiedTaxRegistration/ram:ID") == "DE123456789"
    assert text(root, seller + "ram:PostalTradeAddress/ram:CountryID") == "DE"
    assert text(root, buyer + "ram:Name") == "Bistro SARL"
    assert text(root, buyer + "ram:PostalTradeAddress/ram:CountryID") == "FR"
    assert text(root, buyer + "ram:PostalTradeAddress/ram:PostcodeCode") == "75001"
    lines = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem",
                         NS)
    assert len(lines) == len(data["lines"]) == 4
    amounts = [line.find("ram:SpecifiedLineTradeSettlement/"
                         "ram:SpecifiedTradeSettlementLineMonetarySummation/"
                         "ram:LineTotalAmount", NS).text for line in lines]
    assert amounts == [line["amount"] for line in data["lines"]]
    names = [line.find("ram:SpecifiedTradeProduct/ram:Name", NS).text for line in lines]
    assert names == [line["description"] for line in data["lines"]]
    # API calls: 1,500 chargeable at 0.02; tokens: 1,610,612,736 at 0.00004 (64,424.51)
    calls = lines[1]
    assert calls.find("ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", NS).text == "1500"
    assert Decimal(calls.find("ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/"
                              "ram:ChargeAmount", NS).text) == Decimal("0.02")
    # The same XML is written beside the PDF.
    _name, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert (folder / "INV-2026-000002.xml").read_bytes() == embedded


def test_the_pdf_is_pdfa3_with_the_xml_as_data(issued):
    _, folder = issued
    reader = PdfReader(folder / "INV-2026-000002.pdf")
    root = reader.trailer["/Root"]
    metadata = root["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in metadata or 'pdfaid:part="3"' in metadata
    assert "fx:DocumentType>INVOICE" in metadata and "EN 16931" in metadata
    assert root.get("/OutputIntents")
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    spec = names[1].get_object()
    assert names[0] == "factur-x.xml" and spec["/AFRelationship"] == "/Data"
    # Customers without e-invoices get a plain PDF.
    plain = PdfReader(folder / "INV-2026-000001.pdf").trailer["/Root"]
    assert "/Names" not in plain and not (folder / "INV-2026-000001.xml").exists()


def test_a_credit_note_is_type_381_and_names_its_invoice(issued, tmp_path):
    engine, folder = issued
    credit_invoice(SqlUnitOfWork(engine), NOV_10, "INV-2026-000002", "goodwill", [2])
    render_documents(SqlUnitOfWork(engine), NOV_10, tmp_path / "out", render_batch,
                     periods=["2026-10"])
    root = xml_of((folder / "CN-2026-000001.pdf").read_bytes())
    assert text(root, "rsm:ExchangedDocument/ram:TypeCode") == "381"
    reference = root.find(".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", NS)
    assert reference.text == "INV-2026-000002"
    sums = ("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
            "ram:SpecifiedTradeSettlementHeaderMonetarySummation/")
    assert text(root, sums + "ram:GrandTotalAmount") == "30.00"


def test_rendering_an_einvoice_again_gives_the_same_bytes(issued, tmp_path):
    engine, folder = issued
    first = hashlib.sha256((folder / "INV-2026-000002.pdf").read_bytes()).hexdigest()
    render_documents(SqlUnitOfWork(engine), NOV_10, tmp_path / "again", render_batch,
                     periods=["2026-10"])
    again = tmp_path / "again" / "2026-10" / "INV-2026-000002.pdf"
    assert hashlib.sha256(again.read_bytes()).hexdigest() == first


def test_e_invoices_need_countries_and_the_sellers_tax_id():
    doc = catalog().model_dump(mode="json")
    doc["seller"].pop("tax_id")
    doc["seller"].pop("country")
    doc["customers"][1].pop("country")
    with pytest.raises(CatalogError) as error:
        parse_catalog(doc)
    assert set(error.value.problems) == {
        "customers[1].country: required for e-invoices (einvoice: factur-x)",
        "seller.country: required when customers receive e-invoices (customers[1] does)",
        "seller.tax_id: required when customers receive e-invoices (customers[1] does)"}
    doc = catalog().model_dump(mode="json")
    doc["customers"][1]["country"] = "XX"
    with pytest.raises(CatalogError, match="'XX' is not an ISO 3166 country code"):
        parse_catalog(doc)


def test_the_email_carries_the_xml_too(issued, smtp):
    from billing_core.mail.settings import mail_settings
    from billing_core.services.delivery import send_outbox

    engine, _ = issued
    send_outbox(SqlUnitOfWork(engine), NOV_10, mail_settings({"BILLING_MAIL_URL": smtp.url}))
    bistro = next(r.message for r in smtp.handler.received if "bistro" in r.recipients[0])
    files = {p.get_filename(): p.get_content() for p in bistro.iter_attachments()}
    assert set(files) == {"INV-2026-000002.pdf", "factur-x.xml"}
    assert facturx.xml_check_xsd(files["factur-x.xml"], flavor="factur-x", level="en16931")
    assert io.BytesIO(files["INV-2026-000002.pdf"]).read(5) == b"%PDF-"
