"""Real HTML and PDF renders of stored documents, read back with pypdf."""

import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from pypdf import PdfReader

from billing_core.documents.model import Party, from_json, to_json
from billing_core.invoicing import invoice_document
from billing_core.periods import BillingPeriod
from billing_core.render.files import write_document_files
from billing_core.render.html import environment, render_html
from billing_core.render.pdf import BlockedFetch, PdfRenderer

OCT = BillingPeriod.parse("2026-10")
QUANTITIES = {"api_calls": Decimal(2500), "tokens": Decimal(1610612736),
              "peak_users": Decimal(250)}


@pytest.fixture(scope="module")
def renderer():
    return PdfRenderer()


def make_invoice(catalog, quantities=None, number="INV-2026-000001"):
    """The issue's example invoice, issued on November 2, 2026 (None: a draft)."""
    doc = invoice_document(catalog, catalog.subscriptions[0], OCT, quantities or QUANTITIES,
                           [], "DRAFT-202610-ABCDEF123456")
    return doc.issued(number, date(2026, 11, 2), date(2026, 12, 2)) if number else doc


def write(doc, renderer, base: Path) -> dict[str, Path]:
    write_document_files(json.dumps(to_json(doc)), base, renderer)
    return {k: base.with_name(f"{base.name}.{k}") for k in ("json", "html", "pdf")}


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_shows_the_figures(issue_catalog, renderer, tmp_path):
    paths = write(make_invoice(issue_catalog), renderer, tmp_path / "INV-2026-000001")
    text = pdf_text(paths["pdf"].read_bytes())
    # 2,500 calls, 1,000 free at 0.02 -> 30.00; 250 users, 100 free at 0.50 -> 75.00;
    # 1,610,612,736 tokens at 0.00004 -> 64,424.51 (64424.50944 rounded half-up)
    for expected in ["INV-2026-000001", "Acme Corp", "1 Main St, Springfield",
                     "billing@acme.test", "$49.00", "2,500", "1,000", "1,500", "$0.02",
                     "$30.00", "$0.00004", "1,610,612,736", "$64,424.51", "$75.00",
                     "$64,578.51", "October 1, 2026", "October 31, 2026",
                     "November 2, 2026", "December 2, 2026"]:
        assert expected in text, expected
    assert "DRAFT" not in text
    assert make_invoice(issue_catalog).total == Decimal("64578.51")


def test_a_draft_is_marked_and_has_no_number(issue_catalog, renderer, tmp_path):
    draft = make_invoice(issue_catalog, number=None)
    paths = write(draft, renderer, tmp_path / "draft")
    text = pdf_text(paths["pdf"].read_bytes())
    assert "DRAFT" in text and "Draft invoice" in text and "DRAFT-202610-ABCDEF123456" in text
    assert "not issued" in text and "INV-" not in text
    assert json.loads(paths["json"].read_text())["invoice_number"] is None


def test_json_document_has_the_required_shape(issue_catalog, renderer, tmp_path):
    paths = write(make_invoice(issue_catalog), renderer, tmp_path / "INV-2026-000001")
    doc = json.loads(paths["json"].read_text())
    assert {"invoice_number", "issue_date", "due_date", "customer_id", "subscription_id",
            "period", "currency", "lines", "subtotal", "total", "amount_due"} <= doc.keys()
    assert (doc["invoice_number"], doc["issue_date"], doc["due_date"]) == \
        ("INV-2026-000001", "2026-11-02", "2026-12-02")
    assert doc["period"] == {"label": "2026-10", "start": "2026-10-01", "end": "2026-11-01"}
    assert doc["service_period"] == {"start": "2026-10-01", "end": "2026-11-01"}
    base, calls = doc["lines"][0], doc["lines"][1]
    assert base["meter"] is None and base["kind"] == "base_fee" and base["amount"] == "49.00"
    assert calls == {"kind": "usage", "meter": "api_calls", "usage_period": "2026-10",
                     "description": "API calls", "unit": "calls", "quantity": "2500",
                     "free_units": "1000", "chargeable_units": "1500", "unit_price": "0.02",
                     "amount": "30.00"}
    assert (doc["subtotal"], doc["total"], doc["amount_due"]) == ("64578.51",) * 3
    assert from_json(doc) == make_invoice(issue_catalog)


def test_customer_text_is_escaped_and_fetches_nothing(issue_catalog, renderer, tmp_path):
    hostile = Party(name='<img src="http://attacker.test/x.png">Evil & Co', email="x@y.test",
                    address='<link rel="stylesheet" href="file:///etc/passwd">')
    invoice = replace(make_invoice(issue_catalog), customer=hostile)
    html = render_html(invoice)
    assert "<img" not in html and "&lt;img src=&#34;http://attacker.test/x.png&#34;&gt;" in html
    assert "<link" not in html and "Evil &amp; Co" in html
    text = pdf_text(write(invoice, renderer, tmp_path / "x")["pdf"].read_bytes())
    assert '<img src="http://attacker.test/x.png">Evil & Co' in text.replace("\n", "")


def test_a_subscription_starting_mid_month_shows_its_service_period(issue_catalog, renderer):
    sub = issue_catalog.subscriptions[0].model_copy(update={"start": date(2026, 10, 10)})
    doc = invoice_document(issue_catalog, sub, OCT, QUANTITIES, [], "D")
    assert to_json(doc)["service_period"] == {"start": "2026-10-10", "end": "2026-11-01"}
    text = pdf_text(renderer.render(render_html(doc, inline_css=False)))
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


def test_rendering_is_deterministic_and_dated_by_the_document(issue_catalog, renderer,
                                                               tmp_path):
    invoice = make_invoice(issue_catalog)
    first = write(invoice, renderer, tmp_path / "a")
    second = write(invoice, PdfRenderer(), tmp_path / "b")
    for kind in ("json", "html", "pdf"):
        assert first[kind].read_bytes() == second[kind].read_bytes(), kind
    info = PdfReader(first["pdf"]).metadata
    assert info["/CreationDate"].startswith("D:20261102") and \
        info["/ModDate"].startswith("D:20261102")
    assert oct(first["pdf"].stat().st_mode & 0o777) == "0o644"


def test_long_names_and_addresses_stay_on_the_page(issue_catalog, renderer):
    long = replace(make_invoice(issue_catalog),
                   customer=Party(name="N" * 200, email="a@b.test",
                                  address="\n".join(["A" * 60] * 8)))
    pdf = PdfReader(io.BytesIO(renderer.render(render_html(long, inline_css=False))))
    assert len(pdf.pages) <= 2   # the longest name and address the catalog accepts
    first = pdf.pages[0].extract_text()
    assert first.count("$64,578.51") == 3  # amount due, subtotal, total: all on page one
