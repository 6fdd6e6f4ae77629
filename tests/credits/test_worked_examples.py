"""Credits worked through the whole path on SQLite and PostgreSQL: entitlements that renew
and roll over, prepaid grants in priority order, expiry inside a cycle, partial use, a
void giving credit back, a zero-decimal currency, recurring grants; drafts write nothing."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from billing_core.catalog import parse_catalog
from billing_core.clock import FixedClock
from billing_core.db.models import table
from billing_core.periods import BillingPeriod
from billing_core.services.credits import (
    credit_balances,
    credit_ledger,
    grant_credit,
)
from billing_core.services.documents import void_invoice
from billing_core.services.drafting import draft_period
from billing_core.services.finalizing import finalize_period
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, ingest, write_jsonl

D = Decimal
OCT, NOV, DEC, JAN = (BillingPeriod.parse(p)
                      for p in ("2026-10", "2026-11", "2026-12", "2027-01"))
CLOCKS = {OCT: FixedClock(datetime(2026, 11, 10, 9)), NOV: FixedClock(datetime(2026, 12, 10, 9)),
          DEC: FixedClock(datetime(2027, 1, 10, 9)), JAN: FixedClock(datetime(2027, 2, 10, 9))}
SEP_1 = FixedClock(datetime(2026, 9, 1, 9))


def catalog(currency: str = "USD", price: str = "0.02", base_price: str | None = None,
            entitlements: list[dict[str, Any]] | None = None,
            credits: list[dict[str, Any]] | None = None, taxes: list[dict[str, Any]] | None = None,
            discounts: list[dict[str, Any]] | None = None):
    product: dict[str, Any] = {"key": "pro", "name": "Pro", "charges": [
        {"meter": "api_calls", "price_per_unit": price}]}
    if base_price is not None:
        product["base_price"] = base_price
    sub: dict[str, Any] = {"id": "sub_a", "customer": "cus_a", "product": "pro",
                           "start": "2026-10-01"}
    for key, value in (("entitlements", entitlements), ("credits", credits),
                       ("discounts", discounts)):
        if value:
            sub[key] = value
    return parse_catalog({
        "currency": currency,
        "seller": {"name": "Seller Inc", "country": "US"},
        "taxes": {"rates": taxes or []},
        "meters": [{"key": "api_calls", "name": "API calls", "event_name": "api.call",
                    "aggregation": "sum", "over_property": "n"}],
        "products": [product],
        "customers": [{"id": "cus_a", "name": "A Inc", "email": "a@a.test", "country": "US",
                       "region": "NY"}],
        "subscriptions": [sub]})


def usage(engine, tmp_path, period: BillingPeriod, calls: int | str) -> None:
    name = f"{period}-{len(list(tmp_path.iterdir()))}"
    ingest(engine, [write_jsonl(tmp_path / f"{name}.jsonl", [{
        "event_id": name, "customer_id": "cus_a", "event_name": "api.call",
        "timestamp": f"{period}-15T12:00:00Z", "metadata": {"n": calls}}])])


def finalize(engine, period: BillingPeriod) -> dict[str, Any]:
    result = finalize_period(SqlUnitOfWork(engine), CLOCKS[period], period)
    assert result.draft.failures == []
    uow = SqlUnitOfWork(engine)
    with uow.read():
        rows = uow.documents.by_ids(result.document_ids)
    invoices = [json.loads(r.content) for r in rows if r.kind == "invoice"
                and r.period == str(period)]
    assert len(invoices) == 1
    return invoices[0]


def line(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [x for x in doc["lines"] if x["kind"] == kind]
    assert len(found) == 1, doc["lines"]
    return found[0]


def credits_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(x["description"], x["amount"]) for x in doc["lines"] if x["kind"] == "credit"]


def ledger(engine) -> list[tuple[str, str, Decimal]]:
    return [(grant.name, entry.kind, entry.amount)
            for entry, grant in credit_ledger(SqlUnitOfWork(engine), "cus_a")]


def balances(engine, clock=CLOCKS[DEC], as_of: date | None = None) -> dict[str, Decimal]:
    return {view.grant.name: view.balance
            for view in credit_balances(SqlUnitOfWork(engine), clock, "cus_a", as_of)}


def grant(engine, amount: str, currency: str = "USD", clock=SEP_1, **options):
    created, _ = grant_credit(SqlUnitOfWork(engine), clock, "cus_a", D(amount), currency,
                              **options)
    return created


def ledger_rows(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table("credit_ledger")))
                   .scalar_one())


# --- entitlements -------------------------------------------------------------------------

def test_entitlement_renews_each_cycle_and_only_the_excess_is_priced(engine, tmp_path):
    apply(engine, catalog(entitlements=[{"meter": "api_calls", "units": 1000}]))
    usage(engine, tmp_path, OCT, 1500)
    usage(engine, tmp_path, NOV, 800)
    october = line(finalize(engine, OCT), "usage")
    assert (october["quantity"], october["chargeable_units"], october["amount"]) == \
        ("1500", "500", "10.00")
    assert october["detail"]["entitlement"] == {
        "units": "1000", "rollover_in": "0", "balance": "1000", "covered": "1000",
        "left": "0", "rollover_out": "0"}
    november = line(finalize(engine, NOV), "usage")
    assert (november["chargeable_units"], november["amount"]) == ("0", "0.00")
    assert november["detail"]["entitlement"]["covered"] == "800"
    assert november["detail"]["entitlement"]["left"] == "200"
    # October: 1,000 granted, 1,000 used. November: 1,000 granted, 800 used, 200 expire.
    assert [(kind, amount) for _, kind, amount in ledger(engine)] == [
        ("grant", D(1000)), ("apply", D(-1000)),
        ("grant", D(1000)), ("apply", D(-800)), ("expire", D(-200))]
    assert set(balances(engine).values()) == {D(0)}


def test_rollover_is_a_percentage_of_the_leftover_capped(engine, tmp_path):
    apply(engine, catalog(entitlements=[{"meter": "api_calls", "units": 1000,
                                         "rollover_percent": 50,
                                         "max_rollover_units": 300}]))
    usage(engine, tmp_path, OCT, 200)       # 800 left: 50 % is 400, capped at 300
    usage(engine, tmp_path, NOV, 1250)      # balance 1,300: all covered, 50 left, 25 roll
    usage(engine, tmp_path, DEC, 1100)      # balance 1,025: 75 charged
    oct_e = line(finalize(engine, OCT), "usage")["detail"]["entitlement"]
    assert (oct_e["left"], oct_e["rollover_out"]) == ("800", "300")
    nov = line(finalize(engine, NOV), "usage")
    assert nov["detail"]["entitlement"]["balance"] == "1300"
    assert (nov["chargeable_units"], nov["detail"]["entitlement"]["rollover_out"]) == ("0", "25")
    dec = line(finalize(engine, DEC), "usage")
    assert dec["detail"]["entitlement"]["balance"] == "1025"
    assert (dec["chargeable_units"], dec["amount"]) == ("75", "1.50")
    kinds = [(kind, amount) for _, kind, amount in ledger(engine)]
    assert kinds[:4] == [("grant", D(1000)), ("apply", D(-200)), ("rollover", D(-300)),
                         ("expire", D(-500))]


def test_a_draft_shows_the_rollover_of_cycles_not_issued_yet(engine, tmp_path):
    apply(engine, catalog(entitlements=[{"meter": "api_calls", "units": 1000,
                                         "rollover_percent": 100}]))
    usage(engine, tmp_path, OCT, 400)
    usage(engine, tmp_path, NOV, 1500)
    # October is not issued: November's draft simulates it (600 roll over)
    result = draft_period(SqlUnitOfWork(engine), CLOCKS[NOV], NOV, store=False)
    doc = result.documents[0]
    usage_line = next(x for x in doc.lines if x.kind == "usage")
    assert usage_line.detail["entitlement"]["balance"] == "1600"
    assert usage_line.chargeable_units == 0
    assert ledger_rows(engine) == 0


# --- prepaid grants -----------------------------------------------------------------------

def test_grants_apply_by_priority_then_expiry_then_age_before_tax(engine, tmp_path):
    apply(engine, catalog(base_price="100.00",
                          taxes=[{"country": "US", "region": "NY", "rate": "8", "name": "Tax"}]))
    grant(engine, "30.00", priority=50, reason="old, no expiry")
    grant(engine, "30.00", priority=50, expires=date(2027, 3, 31), reason="expires first")
    grant(engine, "25.00", priority=10, reason="priority 10")
    usage(engine, tmp_path, OCT, 1000)      # 100.00 + 20.00 = 120.00 before tax
    doc = finalize(engine, OCT)
    assert credits_of(doc) == [("priority 10", "-25.00"), ("expires first", "-30.00"),
                               ("old, no expiry", "-30.00")]
    assert doc["subtotal"] == "35.00"
    assert doc["taxes"][0]["amount"] == "2.80"       # 8 % of what is left after credits
    assert doc["total"] == "37.80"
    assert balances(engine) == {"old, no expiry": D(0), "expires first": D(0),
                                "priority 10": D(0)}


def test_partial_application_leaves_the_rest_for_the_next_invoice(engine, tmp_path):
    apply(engine, catalog())
    grant(engine, "500.00", reason="prepaid")
    usage(engine, tmp_path, OCT, 6000)      # 120.00
    usage(engine, tmp_path, NOV, 25000)     # 500.00: 380.00 left to pay it
    october = finalize(engine, OCT)
    assert credits_of(october) == [("prepaid", "-120.00")]
    assert october["total"] == "0.00"
    assert line(october, "credit")["detail"]["balance_after"] == "380"
    november = finalize(engine, NOV)
    assert credits_of(november) == [("prepaid", "-380.00")]
    assert november["total"] == "120.00"
    assert balances(engine) == {"prepaid": D(0)}
    # a fully paid invoice is marked paid when issued
    uow = SqlUnitOfWork(engine)
    with uow.read():
        statuses = {r.period: r.status for r in uow.documents.listing()}
    assert statuses == {"2026-10": "paid", "2026-11": "finalized"}


def test_a_grant_expiring_mid_cycle_pays_its_share_of_the_cycle_and_then_expires(
        engine, tmp_path):
    apply(engine, catalog())
    grant(engine, "1000.00", expires=date(2026, 10, 15), reason="ends mid-October")
    usage(engine, tmp_path, OCT, 3100)      # 62.00; valid 15 of 31 days: 30.00
    doc = finalize(engine, OCT)
    assert credits_of(doc) == [("ends mid-October", "-30.00")]
    assert line(doc, "credit")["detail"]["valid_days"] == {"days": 15, "of_days": 31}
    # what is left can never be used again: it expires when October is issued
    assert [(kind, amount) for _, kind, amount in ledger(engine)] == [
        ("grant", D("1000.00")), ("apply", D("-30.00")), ("expire", D("-970.00"))]
    assert balances(engine, as_of=date(2026, 10, 10)) == {"ends mid-October": D("1000.00")}


def test_applies_to_limits_a_grant_to_its_charges(engine, tmp_path):
    apply(engine, catalog(base_price="100.00"))
    grant(engine, "500.00", applies_to=["api_calls"], reason="usage only")
    usage(engine, tmp_path, OCT, 1000)      # usage 20.00, base fee 100.00
    doc = finalize(engine, OCT)
    assert credits_of(doc) == [("usage only", "-20.00")]
    assert line(doc, "credit")["detail"]["allocation"] == {"api_calls": "20"}
    assert doc["total"] == "100.00"


def test_credits_apply_after_discounts(engine, tmp_path):
    apply(engine, catalog(base_price="100.00", discounts=[
        {"name": "Launch", "percent_off": "50", "duration": "forever"}]))
    grant(engine, "500.00", reason="prepaid")
    usage(engine, tmp_path, OCT, 0)
    doc = finalize(engine, OCT)
    assert credits_of(doc) == [("prepaid", "-50.00")]
    assert doc["total"] == "0.00"


def test_voiding_an_invoice_gives_the_credit_back(engine, tmp_path):
    apply(engine, catalog())
    grant(engine, "100.00", reason="prepaid")
    grant(engine, "100.00", expires=date(2026, 10, 31), reason="October only",
          priority=1)
    usage(engine, tmp_path, OCT, 7500)      # 150.00: 100 from "October only", 50 prepaid
    october = finalize(engine, OCT)
    assert credits_of(october) == [("October only", "-100.00"), ("prepaid", "-50.00")]
    assert balances(engine) == {"prepaid": D(50), "October only": D(0)}
    void_invoice(SqlUnitOfWork(engine), CLOCKS[NOV], october["invoice_number"], "wrong customer")
    # prepaid gets its 50 back; "October only" gets 100 back that expire at once
    assert balances(engine) == {"prepaid": D(100), "October only": D(0)}
    kinds = [(name, kind, amount) for name, kind, amount in ledger(engine)
             if kind in ("restore", "expire")]
    assert sorted(kinds) == sorted([("October only", "restore", D(100)),
                                    ("October only", "expire", D(-100)),
                                    ("prepaid", "restore", D(50))])
    usage(engine, tmp_path, NOV, 10000)     # 200.00
    november = finalize(engine, NOV)
    assert credits_of(november) == [("prepaid", "-100.00")]
    assert november["total"] == "100.00"


def test_zero_decimal_currency_grants_whole_yen_and_rounds_shares_down(engine, tmp_path):
    apply(engine, catalog(currency="JPY", price="3"))
    try:
        grant(engine, "100.5", currency="JPY")
        raise AssertionError("a fractional yen grant was accepted")
    except ValueError as exc:
        assert "decimal places" in str(exc)
    grant(engine, "10000", currency="JPY", expires=date(2026, 10, 10), reason="ten days")
    usage(engine, tmp_path, OCT, 1001)      # 3,003 yen; 10 of 31 days = 968.70 -> 968
    doc = finalize(engine, OCT)
    assert credits_of(doc) == [("ten days", "-968")]
    assert doc["total"] == "2035"


def test_grants_in_another_currency_are_not_used(engine, tmp_path):
    apply(engine, catalog())
    grant(engine, "100.00", currency="EUR", reason="euros")
    usage(engine, tmp_path, OCT, 1000)
    assert credits_of(finalize(engine, OCT)) == []
    assert balances(engine) == {"euros": D(100)}


def test_recurring_credit_is_granted_each_cycle_and_expires_with_it(engine, tmp_path):
    apply(engine, catalog(credits=[{"amount": "5.00", "name": "Monthly credit"}]))
    usage(engine, tmp_path, OCT, 1000)      # 20.00
    usage(engine, tmp_path, NOV, 100)       # 2.00: 3.00 of November's credit expire
    draft = draft_period(SqlUnitOfWork(engine), CLOCKS[OCT], OCT, store=False).documents[0]
    assert [(x.description, x.amount) for x in draft.lines if x.kind == "credit"] == \
        [("Monthly credit", D("-5.00"))]
    assert ledger_rows(engine) == 0
    assert credits_of(finalize(engine, OCT)) == [("Monthly credit", "-5.00")]
    assert credits_of(finalize(engine, NOV)) == [("Monthly credit", "-2.00")]
    assert [(kind, amount) for _, kind, amount in ledger(engine)] == [
        ("grant", D("5.00")), ("apply", D("-5.00")),
        ("grant", D("5.00")), ("apply", D("-2.00")), ("expire", D("-3.00"))]


def test_drafts_show_credits_and_write_nothing_and_rerunning_finalize_is_a_no_op(
        engine, tmp_path):
    apply(engine, catalog())
    grant(engine, "10.00", reason="prepaid")
    usage(engine, tmp_path, OCT, 1000)
    before = ledger_rows(engine)
    stored = draft_period(SqlUnitOfWork(engine), CLOCKS[OCT], OCT)
    uow = SqlUnitOfWork(engine)
    with uow.read():
        draft = json.loads(uow.documents.by_ids(stored.document_ids)[0].content)
    assert credits_of(draft) == [("prepaid", "-10.00")]
    assert ledger_rows(engine) == before
    finalize(engine, OCT)
    after = ledger_rows(engine)
    finalize_period(SqlUnitOfWork(engine), CLOCKS[OCT], OCT)
    assert ledger_rows(engine) == after
    assert balances(engine) == {"prepaid": D(0)}


def test_grant_with_a_reference_is_idempotent(engine):
    apply(engine, catalog())
    first = grant(engine, "10.00", reference="po-1")
    again, created = grant_credit(SqlUnitOfWork(engine), SEP_1, "cus_a", D("10.00"), "USD",
                                  reference="po-1")
    assert (again.id, created) == (first.id, False)
    assert balances(engine) == {"Prepaid credit": D(10)}


def test_the_pdf_shows_included_units_and_credits_applied_before_tax(engine, tmp_path):
    from billing_core.documents.model import from_json
    from billing_core.render.html import render_html
    from billing_core.render.pdf import PdfRenderer
    from tests.render.test_render import pdf_text

    apply(engine, catalog(entitlements=[{"meter": "api_calls", "units": 1000,
                                         "rollover_percent": 10}],
                          taxes=[{"country": "US", "region": "NY", "rate": "8",
                                  "name": "Tax"}]))
    grant(engine, "5.00", reason="Welcome credit")
    usage(engine, tmp_path, OCT, 1500)     # 500 x 0.02 = 10.00, 5.00 of it paid by credit
    doc = finalize(engine, OCT)
    assert doc["total"] == "5.40"
    text = " ".join(pdf_text(PdfRenderer().render(render_html(from_json(doc)))).split())
    assert "Included units: 1,000 of 1,000 used (1,000 this period + 0 rolled over); 0 left" \
        in text
    assert "Welcome credit" in text and "-$5.00" in text.replace("−", "-")
    assert "Prepaid credit applied before tax: balance $5.00 → $0.00" in text
