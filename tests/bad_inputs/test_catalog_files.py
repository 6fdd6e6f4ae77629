"""Hostile catalog files: every one gets "N problem(s), nothing applied" with places, never
a traceback, a blow-up or a silently different value; on SQLite and PostgreSQL nothing of
a refused file reaches the database."""

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from billing_cli.main import app
from tests.conftest import DATA

BASE = (DATA / "issue_catalog.yaml").read_text()


def swap(old: str, new: str) -> bytes:
    assert old in BASE, old
    return BASE.replace(old, new, 1).encode()


BILLION_LAUGHS = b"""currency: USD
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""

CASES = [
    ("an impossible date", swap("start: 2026-01-01", "start: 2026-02-30"),
     "subscriptions[0].start: must be a date YYYY-MM-DD, got '2026-02-30': day is out of "
     "range for month"),
    ("a time as a start date", swap("start: 2026-01-01", "start: 2026-01-01T10:00:00"),
     "subscriptions[0].start: must be a date YYYY-MM-DD, got '2026-01-01T10:00:00'"),
    ("an end before its start", swap("start: 2026-01-01}", "start: 2026-01-01, end: 2025-12-01}"),
     "subscriptions[0].end: must be after start 2026-01-01"),
    ("Latin-1 text", swap("Acme Corp", "Acm\xe9 Corp").decode().encode("latin-1"),
     "not UTF-8 text (byte 0xe9"),
    ("a binary file", b"\x00\x01\x02\xff\xfe" * 100, "not UTF-8 text"),
    ("a NUL character", swap("Acme Corp", "Acme\x00Corp"), "contains a NUL character"),
    ("an escaped NUL in a name", swap("name: Acme Corp", 'name: "Acme\\0Corp"'),
     "customers[0].name: contains a NUL character"),
    ("nested 5,000 levels", b"currency: USD\nx: " + b"[" * 5000 + b"]" * 5000 + b"\n",
     "nested more than 64 levels deep"),
    ("a billion laughs", BILLION_LAUGHS, "YAML aliases (*name) are not allowed"),
    ("the currency given twice", b"currency: USD\n" + BASE.encode().replace(
        b"currency: USD", b"currency: EUR", 1), "key 'currency' is given twice"),
    ("a key twice in a customer", swap("email: billing@acme.test",
                                       "email: billing@acme.test, email: x@y.test"),
     "key 'email' is given twice"),
    ("currency XXX", swap("currency: USD", "currency: XXX"),
     "currency: 'XXX' is an ISO 4217 code but not a currency one can invoice in"),
    ("currency XTS", swap("currency: USD", "currency: XTS"), "not a currency one can invoice"),
    ("an unknown currency", swap("currency: USD", "currency: ABC"),
     "currency: unknown ISO 4217 currency 'ABC'"),
    ("a lowercase currency", swap("currency: USD", "currency: usd"),
     "currency: unknown ISO 4217 currency 'usd'"),
    ("a base price of 1e100", swap('base_price: "49.00"', 'base_price: "1e100"'),
     "products[0].base_price: is too large (at most 15 digits before the decimal point)"),
    ("a price with 90 significant digits",
     swap('price_per_unit: "0.02"', 'price_per_unit: "1.' + "1" * 89 + '"'),
     "products[0].charges[0].price_per_unit: has too many decimal places (at most 18)"),
    ("a price of 1e-100000", swap('price_per_unit: "0.02"', 'price_per_unit: "1e-100000"'),
     "products[0].charges[0].price_per_unit: has too many decimal places"),
    ("a price of 31 significant digits",
     swap('price_per_unit: "0.02"', 'price_per_unit: "1234567890123.123456789012345678"'),
     "has too many significant digits (at most 30)"),
    ("a negative price", swap('price_per_unit: "0.02"', 'price_per_unit: "-0.02"'),
     "products[0].charges[0].price_per_unit: must not be negative"),
    ("a price that is true", swap('price_per_unit: "0.02"', "price_per_unit: true"),
     "products[0].charges[0].price_per_unit: must be a decimal number, got True"),
    ("a price of .nan", swap('price_per_unit: "0.02"', "price_per_unit: .nan"),
     "products[0].charges[0].price_per_unit: must be a decimal number"),
    ("a 10,000-character name", swap("name: Acme Corp", "name: " + "N" * 10_000),
     "customers[0].name: is 10000 characters long (at most 200)"),
    ("a 10,000-character address", swap('address: "1 Main St, Springfield"',
                                        'address: "' + "A" * 10_000 + '"'),
     "customers[0].address: is 10000 characters long (at most 500)"),
    ("a bad email", swap("email: billing@acme.test", "email: billing@"),
     "customers[0].email: 'billing@' is not a valid email address"),
    ("a list at the top", b"- currency: USD\n", "(top): must be a mapping"),
    ("an empty file", b"", "(top): must be a mapping"),
    ("a YAML syntax error", b"currency: USD\nmeters: [\n", "line 3, column 1: invalid YAML"),
    ("a negative grace period", BASE.encode() + b"settings: {grace_period_days: -1}\n",
     "settings.grace_period_days: must be from 0 to 90, got -1"),
    ("a number format without seq", BASE.encode() + b"settings: {invoice_number_format: "
                                                    b"'INV-{year}'}\n",
     "settings.invoice_number_format: 'INV-{year}' must use exactly the fields"),
    ("an unknown late-usage policy", BASE.encode() + b"settings: {late_usage: later}\n",
     "settings.late_usage: must be one of next_invoice, credit_note_and_reissue, got 'later'"),
    ("a control character in a name", swap("name: Acme Corp", 'name: "Acme\\x1b[2JCorp"'),
     "customers[0].name: contains a control character"),
]


@pytest.fixture
def cli(db_url, engine, monkeypatch, tmp_path):
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(("name", "content", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_catalog_file(cli, engine, tmp_path, name, content, expected):
    path = tmp_path / "catalog.yaml"
    path.write_bytes(content)
    for command in ("validate", "apply"):
        result = cli("catalog", command, path)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert f"{path}: " in result.output and "nothing applied" in result.output
        assert expected in result.output, result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM catalog_version")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM customer")).scalar_one() == 0


def test_norway_stays_a_country_code_and_yes_stays_text(tmp_path: Path):
    from billing_core.catalog.yaml_loader import load_yaml

    assert load_yaml(b"a: NO\nb: yes\nc: true\nd: 0.1\n") == {
        "a": "NO", "b": "yes", "c": True, "d": __import__("decimal").Decimal("0.1")}
