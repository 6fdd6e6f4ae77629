"""Real HTML and PDF renders, read back with pypdf."""

import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from jinja2 import UndefinedError
from pypdf import PdfReader

from billing_core.catalog import Customer
from billing_core.invoice import draft_invoice, invoice_to_dict
from billing_core.periods import BillingPeriod
from billing_core.pricing import price_lines
from billing_core.render.files import write_invoice_files
from billing_core.render.html import environment, render_html
from billing_core.render.pdf import BlockedFetch, PdfRenderer

OCT = BillingPeriod.parse("2026-10")


@pytest.fixture(scope="module")
def renderer():
    return PdfRenderer()


def make_invoice(catalog, customer=None, quantities=None):
    product = catalog.product("pro")
    meters = {m.key: m for m in catalog.meters}
    quantities = quantities or {"api_calls": Decimal(2500), "tokens": Decimal(1610612736),
                                "peak_users": Decimal(250)}
    lines = price_lines(product, meters, quantities, catalog.currency)
    return draft_invoice(catalog.seller, customer or catalog.customers[0],
                         catalog.subscriptions[0], product, OCT, catalog.currency,
                         lines).numbered("INV-202610-00001", date(2026, 11, 2))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_shows_the_figures(issue_catalog, renderer, tmp_path):
    invoice = make_invoice(issue_catalog)
    paths = write_invoice_files(invoice, tmp_path, renderer)
    assert paths["pdf"] == tmp_path / "2026-10" / "INV-202610-00001.pdf"
    text = pdf_text(paths["pdf"].read_bytes())
    # 2,500 calls, 1,000 free at 0.02 -> 30.00; 250 users, 100 free at 0.50 -> 75.00;
    # 1,610,612,736 tokens at 0.00004 -> 64,424.51 (64424.50944 rounded half-up)
    for expected in ["INV-202610-00001", "Acme Corp", "1 Main St, Springfield",
                     "billing@acme.test", "$49.00", "2,500", "1,000", "1,500", "$0.02",
                     "$30.00", "$0.00004", "1,610,612,736", "$64,424.51", "$75.00",
                     "$64,578.51", "October 1, 2026", "October 31, 2026"]:
        assert expected in text, expected
    assert invoice.total == Decimal("64578.51")


def test_json_document_has_the_required_shape(issue_catalog, renderer, tmp_path):
    paths = write_invoice_files(make_invoice(issue_catalog), tmp_path, renderer)
    doc = json.loads(paths["json"].read_text())
    assert {"invoice_number", "customer_id", "subscription_id", "period", "currency", "lines",
            "subtotal", "total"} <= doc.keys()
    assert doc["period"] == {"start": "2026-10-01", "end": "2026-11-01"}
    assert doc["service_period"] == doc["period"]
    base, calls = doc["lines"][0], doc["lines"][1]
    assert base["meter"] is None and base["amount"] == "49.00"
    assert calls == {"meter": "api_calls", "description": "API calls", "unit": "calls",
                     "quantity": "2500", "free_units": "1000", "chargeable_units": "1500",
                     "unit_price": "0.02", "amount": "30.00"}
    assert (doc["subtotal"], doc["total"]) == ("64578.51", "64578.51")
    assert doc == invoice_to_dict(make_invoice(issue_catalog))


def test_customer_text_is_escaped_and_fetches_nothing(issue_catalog, renderer, tmp_path):
    hostile = Customer(id="cus_acme", name='<img src="http://attacker.test/x.png">Evil & Co',
                       email="x@y.test",
                       address='<link rel="stylesheet" href="file:///etc/passwd">')
    invoice = make_invoice(issue_catalog, customer=hostile)
    html = render_html(invoice)
    assert "<img" not in html and "&lt;img src=&#34;http://attacker.test/x.png&#34;&gt;" in html
    assert "<link" not in html and "Evil &amp; Co" in html
    text = pdf_text(write_invoice_files(invoice, tmp_path, renderer)["pdf"].read_bytes())
    assert '<img src="http://attacker.test/x.png">Evil & Co' in text.replace("\n", "")


def test_a_subscription_starting_mid_month_shows_its_service_period(issue_catalog, renderer):
    sub = replace(issue_catalog.subscriptions[0], start=date(2026, 10, 10))
    invoice = replace(make_invoice(issue_catalog), subscription=sub)
    assert invoice_to_dict(invoice)["service_period"] == {"start": "2026-10-10",
                                                         "end": "2026-11-01"}
    text = pdf_text(renderer.render(render_html(invoice, inline_css=False)))
    assert "Service period" in text and "October 10, 2026 – October 31, 2026" in text


@pytest.mark.parametrize("url", ["http://example.test/logo.png", "file:///etc/hostname",
                                 "data:image/png;base64,iVBORw0KGgo=", "../pyproject.toml"])
def test_fetches_outside_templates_fail_the_render(renderer, url):
    with pytest.raises(BlockedFetch):
        renderer.render(f'<html><body><img src="{url}"></body></html>')


def test_files_under_templates_are_allowed(renderer):
    # The stylesheet's @font-face loads templates/fonts/Inter-*.otf through the locked
    # fetcher (a missing font file fails the render); the PDF embeds it under that family.
    pdf = renderer.render('<html><body><p>ok</p></body></html>')
    reader = PdfReader(io.BytesIO(pdf))
    names = [str(f.get_object()["/BaseFont"])
             for f in reader.pages[0]["/Resources"]["/Font"].values()]
    assert names and all(n.endswith("+Invoice-Sans") for n in names), names


def test_templates_refuse_undefined_names():
    template = environment().from_string("{{ nothing_here }}")
    with pytest.raises(UndefinedError):
        template.render()


def test_rendering_is_deterministic(issue_catalog, renderer):
    invoice = make_invoice(issue_catalog)
    html = render_html(invoice, inline_css=False)
    assert renderer.render(html) == renderer.render(html)
    assert render_html(replace(invoice)) == render_html(invoice)
