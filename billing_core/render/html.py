"""HTML documents from the Jinja2 templates (autoescape on, StrictUndefined)."""

from __future__ import annotations

import hashlib
import os
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from billing_core.documents.model import Document
from billing_core.money import normalize_quantity

TEMPLATES_DIR = Path(os.environ.get("BILLING_TEMPLATES_DIR")
                     or Path(__file__).resolve().parents[1] / "templates")
LOCALE = "en_US"
TEMPLATE_FOR = {"invoice": "invoice.html", "credit_note": "credit_note.html"}


def money(value: Decimal, currency: str) -> str:
    """$1,234.50 — rounded amounts, shown with the currency's minor units."""
    return format_currency(value, currency, locale=LOCALE)


def unit_price(value: Decimal, currency: str) -> str:
    """A unit price with every significant digit ($0.00004), never rounded away."""
    return format_currency(value, currency, locale=LOCALE, decimal_quantization=False)


def quantity(value: Decimal) -> str:
    return format_decimal(normalize_quantity(value), locale=LOCALE, decimal_quantization=False)


def long_date(value: date) -> str:
    return format_date(value, format="long", locale=LOCALE)


@lru_cache(maxsize=4)
def environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """The Jinja2 environment: everything escaped, undefined names are errors."""
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, unit_price=unit_price, quantity=quantity,
                       long_date=long_date)
    return env


@lru_cache(maxsize=4)
def templates_fingerprint(templates_dir: Path = TEMPLATES_DIR) -> str:
    """A hash of every template, stylesheet and font: drafts are rendered again when
    it changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in templates_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(templates_dir)).encode() + b"\x00")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def render_html(doc: Document, *, inline_css: bool = True,
                templates_dir: Path = TEMPLATES_DIR) -> str:
    """The document's page. With inline_css the file stands alone (for the .html output);
    without it the PDF renderer applies its pre-parsed stylesheet."""
    template = environment(templates_dir).get_template(TEMPLATE_FOR[doc.document_type])
    return template.render(doc=doc, inline_css=inline_css,
                           last_day=doc.period_end - timedelta(days=1),
                           service_last_day=doc.service_end - timedelta(days=1))
