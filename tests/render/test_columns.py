"""The lines table's number columns, measured from the font: every text fits its column
in the real layout, and the automatic layout stays where measuring cannot be trusted."""

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from weasyprint import HTML
from weasyprint.formatting_structure import boxes

from billing_core.documents.model import Document
from billing_core.invoicing import invoice_document
from billing_core.periods import BillingPeriod
from billing_core.render.columns import REGULAR, SEMIBOLD, fixed_columns, font_widths
from billing_core.render.html import TEMPLATES_DIR, render_html
from billing_core.render.pdf import PdfRenderer

OCT = BillingPeriod.parse("2026-10")
FONTS = TEMPLATES_DIR / "fonts"


@pytest.fixture(scope="module")
def renderer():
    return PdfRenderer()


def documents(catalog, scale: Decimal) -> list[Document]:
    """Every subscription of the catalog, billed `scale` units (and fractions) of each
    meter, issued."""
    meters = sorted(meter.key for meter in catalog.meters)
    quantities = {meter: scale * (i + 1) + Decimal("0.5") for i, meter in enumerate(meters)}
    docs = []
    for n, sub in enumerate(catalog.subscriptions):
        doc = invoice_document(catalog, sub, OCT, quantities, [], f"DRAFT-{n}")
        docs.append(doc.issued(f"INV-2026-{n:06d}", date(2026, 11, 2), date(2026, 12, 2)))
    return docs


def cells_and_texts(renderer, html: str):
    """(table class, [(cell box, its text boxes)]) of the lines table's number cells, as
    WeasyPrint lays the page out."""
    document = HTML(string=html, base_url=str(TEMPLATES_DIR) + "/",
                    url_fetcher=renderer.fetcher).render(
        stylesheets=[renderer.stylesheet], font_config=renderer.font_config)
    found, table_class = [], None
    for page in document.pages:
        for box in page._page_box.descendants():
            if isinstance(box, boxes.TableBox) and "lines" in (box.element.get("class") or ""):
                table_class = box.element.get("class")
                cells = [cell for group in box.children if not group.is_header
                         for row in group.children for cell in row.children]
                for cell in cells:
                    if "num" in (cell.element.get("class") or "").split():
                        texts = [t for t in cell.descendants() if isinstance(t, boxes.TextBox)]
                        found.append((cell, texts))
    return table_class, found


def overflowing(found) -> list[str]:
    bad = []
    for cell, texts in found:
        left = cell.content_box_x()
        right = left + cell.width
        for text in texts:
            if text.position_x < left - 0.01 or text.position_x + text.width > right + 0.01:
                bad.append(f"{text.text!r}: {text.position_x:.2f}+{text.width:.2f} "
                           f"outside {left:.2f}..{right:.2f}")
    return bad


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "fr_FR", "en_IN"])
@pytest.mark.parametrize("scale", [Decimal(0), Decimal(7), Decimal(123456),
                                   Decimal("4321987.5")])
def test_every_number_fits_its_measured_column(demo_catalog, renderer, locale, scale):
    fixed = 0
    for doc in documents(demo_catalog, scale):
        doc = replace(doc, locale=locale)
        table_class, found = cells_and_texts(renderer, render_html(doc, inline_css=False))
        assert found, "the lines table has number cells"
        assert overflowing(found) == []
        fixed += "fixed" in table_class.split()
    assert fixed, "at least one document is laid out with measured columns"


def test_numbers_that_leave_no_room_keep_the_automatic_layout(demo_catalog, renderer):
    doc = replace(documents(demo_catalog, Decimal("123456789012345678901234.123456"))[0],
                  locale="de_DE")
    html = render_html(doc, inline_css=False)
    table_class, found = cells_and_texts(renderer, html)
    assert table_class.split() == ["lines"] and "<colgroup>" not in html
    assert found


def test_the_measure_is_an_upper_bound_of_the_real_text_width(renderer):
    """Each text, set alone the way a number cell sets it, is no wider than measured,
    and the measure is not wildly wider (it must stay useful)."""
    texts = ["0", "1,610,612,736", "$64,424.51", "€1.234,56", "1 234,56 €", "£0.00004",
             "¥1,000", "₹12,34,567.89", "CHF 1’234.50", "—", "19%", "9.975 %", "tiered",
             "$1.00 per 1,000", "WWWWWW", "1\u202f234", "1\u00a0234"]
    html = "".join(f'<p style="white-space: nowrap; font-variant-numeric: tabular-nums; '
                   f'font-weight: {w}; font-size: 9.5pt">{t}</p>'
                   for t in texts for w in (400, 600))
    document = HTML(string=html, base_url=str(TEMPLATES_DIR) + "/").render(
        stylesheets=[renderer.stylesheet], font_config=renderer.font_config)
    lines = [[t for t in line.descendants() if isinstance(t, boxes.TextBox)]
             for page in document.pages for line in page._page_box.descendants()
             if isinstance(line, boxes.LineBox) and line.element_tag == "p"]
    assert len(lines) == 2 * len(texts)
    for n, parts in enumerate(lines):
        text = "".join(part.text for part in parts)
        px = parts[-1].position_x + parts[-1].width - parts[0].position_x
        points = px * 3 / 4  # WeasyPrint lays out in CSS px
        measured = font_widths(FONTS / (SEMIBOLD if n % 2 else REGULAR)).measure(text)
        assert measured is not None, text
        bound = float(measured * Fraction(19, 2))
        assert points <= bound + 0.01, (text, points, bound)
        assert points >= bound * 0.9, (text, points, bound)


ROW = ('<tr class="usage"><td class="desc">x</td><td class="num">{q} <span class="unit">'
       '{unit}</span></td><td class="num">0</td><td class="num">{q}</td>'
       '<td class="num price">$0.02</td><td class="num amount">$1.00</td></tr>')
HEADERS = ["Usage", "Free", "Billable", "Unit price", "Amount"]


def test_a_character_the_font_lacks_keeps_the_automatic_layout():
    assert fixed_columns(ROW.format(q="2,500", unit="calls"), HEADERS, FONTS)
    assert fixed_columns(ROW.format(q="2,500", unit="呼び出し"), HEADERS, FONTS) is None
    assert fixed_columns(ROW.format(q="2,500", unit="calls"),
                         ["Usage", "Free", "Billable", "Unit price", "金額"], FONTS) is None


def test_columns_grow_with_their_widest_text_and_nested_tables_are_skipped():
    short = fixed_columns(ROW.format(q="1", unit="calls"), HEADERS, FONTS)
    wide = fixed_columns(ROW.format(q="1,234,567,890", unit="calls"), HEADERS, FONTS)
    assert short and wide
    assert wide[0] > short[0] and wide[2] > short[2] and wide[1:2] == short[1:2]
    tiers = ('<tr class="breakdown"><td colspan="6"><table class="tiers"><tr><td>Tier 1</td>'
             '<td class="num">999,999,999,999,999,999</td></tr></table></td></tr>')
    assert fixed_columns(ROW.format(q="1", unit="calls") + tiers, HEADERS, FONTS) == short


def test_a_row_of_another_shape_keeps_the_automatic_layout():
    assert fixed_columns('<tr><td class="desc">x</td><td class="num">1</td></tr>',
                         HEADERS, FONTS) is None
    assert fixed_columns(ROW.format(q="1", unit="calls"), HEADERS[:4], FONTS) is None


def test_templates_without_the_bundled_fonts_keep_the_automatic_layout(tmp_path):
    assert fixed_columns(ROW.format(q="1", unit="calls"), HEADERS, tmp_path / "fonts") is None


def test_the_pdf_text_is_the_same_with_measured_columns(issue_catalog, renderer):
    """Fixed columns change where the numbers stand, not what the page says."""
    from tests.render.test_render import make_invoice, pdf_text

    doc = make_invoice(issue_catalog)
    html = render_html(doc, inline_css=False)
    assert '<table class="lines fixed">' in html
    automatic = html.replace('<table class="lines fixed">', '<table class="lines">')
    automatic = automatic[:automatic.index("<colgroup>")] + \
        automatic[automatic.index("</colgroup>") + len("</colgroup>"):]
    words = sorted(pdf_text(renderer.render(html)).split())
    assert words == sorted(pdf_text(renderer.render(automatic)).split())
