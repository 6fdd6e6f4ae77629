"""HTML documents from the Jinja2 templates (autoescape on, StrictUndefined)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from billing_core.documents.model import Document
from billing_core.money import normalize_quantity
from billing_core.render.columns import fixed_columns
from billing_core.render.labels import translate

TEMPLATES_DIR = Path(os.environ.get("BILLING_TEMPLATES_DIR")
                     or Path(__file__).resolve().parents[1] / "templates")
LOCALE = "en_US"
TEMPLATE_FOR = {"invoice": "invoice.html", "credit_note": "credit_note.html"}


def _locale(context: Context) -> str:
    return str(context.get("locale") or LOCALE)


def format_money(value: Decimal, currency: str, locale: str = LOCALE) -> str:
    """$1,234.50 / 1.234,50 € — rounded amounts, with the currency's minor units."""
    return format_currency(value, currency, locale=locale)


@pass_context
def money(context: Context, value: Decimal, currency: str) -> str:
    return format_money(value, currency, _locale(context))


@pass_context
def unit_price(context: Context, value: Decimal, currency: str) -> str:
    """A unit price with every significant digit ($0.00004), never rounded away."""
    return format_currency(value, currency, locale=_locale(context),
                           decimal_quantization=False)


@pass_context
def quantity(context: Context, value: Decimal | str) -> str:
    return format_decimal(normalize_quantity(Decimal(value)), locale=_locale(context),
                          decimal_quantization=False)


@pass_context
def percent(context: Context, value: Decimal | str) -> str:
    """19 % -> '19%' (en), '19 %' (de, fr); 9.975 keeps its digits."""
    return format_percent(Decimal(value).scaleb(-2), locale=_locale(context),
                          decimal_quantization=False)


@pass_context
def long_date(context: Context, value: date | str) -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return format_date(day, format="long", locale=_locale(context))


@pass_context
def local_time(context: Context, value: datetime, timezone: str) -> str:
    """A naive UTC instant as the local date and time in `timezone`."""
    local = value.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return f"{format_date(local.date(), format='long', locale=_locale(context))} " \
           f"{local:%H:%M}"


@pass_context
def month_name(context: Context, period: str) -> str:
    """'2026-10' as 'October 2026' / 'Oktober 2026'."""
    year, month = period.split("-")
    return format_date(date(int(year), int(month), 1), format="MMMM y",
                       locale=_locale(context))


@pass_context
def last_day(context: Context, value: date | str) -> str:
    """The day before an exclusive end date, long form."""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return long_date(context, day - timedelta(days=1))


@pass_context
def _(context: Context, text: str, **values: Any) -> str:
    return translate(_locale(context), text, **values)


def decimal(value: Decimal | str | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


@pass_context
def discount_target(context: Context, key: str, doc: Document) -> str:
    """A discount's `applies_to` entry as the customer reads it."""
    if key == "base_fee":
        return translate(_locale(context), "base fee")
    names = [line.description for line in doc.lines if line.meter == key]
    return names[0] if names else key


FILTERS = {"money": money, "decimal": decimal, "discount_target": discount_target,
           "unit_price": unit_price, "quantity": quantity,
           "percent": percent, "long_date": long_date, "local_time": local_time,
           "last_day": last_day, "month_name": month_name}


@lru_cache(maxsize=4)
def environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """The Jinja2 environment: everything escaped, undefined names are errors."""
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.globals["_"] = _
    env.globals["fixed_columns"] = partial(fixed_columns, fonts_dir=templates_dir / "fonts")
    return env


@lru_cache(maxsize=4)
def email_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """Templates in email/: HTML escaped, plain text and subjects not."""
    env = Environment(loader=FileSystemLoader(str(templates_dir / "email")),
                      autoescape=select_autoescape(enabled_extensions=("html",),
                                                   default_for_string=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(FILTERS)
    env.globals["_"] = _
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
    return template.render(doc=doc, inline_css=inline_css, locale=doc.locale,
                           last_day=doc.period_end - timedelta(days=1),
                           service_last_day=doc.service_end - timedelta(days=1))
