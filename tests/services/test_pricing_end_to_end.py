"""Pricing through the whole path on SQLite and PostgreSQL: events ingested, measured in
SQL, drafted, finalized; price versions, time zones, anchors, late usage with tiers."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from billing_core.catalog import CatalogError, parse_catalog
from billing_core.clock import FixedClock
from billing_core.periods import BillingPeriod
from billing_core.services.drafting import draft_period
from billing_core.services.finalizing import NotFinalizable, finalize_period
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, ingest, write_jsonl

D = Decimal
OCT, NOV, DEC = (BillingPeriod.parse(p) for p in ("2026-10", "2026-11", "2026-12"))
NOV_10 = FixedClock(datetime(2026, 11, 10, 9, 0))
DEC_10 = FixedClock(datetime(2026, 12, 10, 9, 0))

METERS = [
    {"key": "api_calls", "name": "API calls", "event_name": "api.call",
     "aggregation": "count"},
    {"key": "tokens", "name": "Tokens", "event_name": "llm", "aggregation": "sum",
     "over_property": "tokens"},
    {"key": "storage_gb", "name": "Storage", "event_name": "storage",
     "aggregation": "weighted_sum", "over_property": "gb", "unit": "GB"},
    {"key": "seats", "name": "Seats", "event_name": "seats", "aggregation": "max",
     "over_property": "n"},
    {"key": "payments_volume", "name": "Payments", "event_name": "payment",
     "aggregation": "sum", "over_property": "amount"},
]
CHARGES = [
    {"meter": "api_calls", "price_per_unit": "0.02", "free_threshold": 1000},
    {"meter": "tokens", "price": {"model": "package", "package_size": 1000,
                                  "package_price": "0.04"}, "free_threshold": 0},
    {"meter": "storage_gb", "price": {"model": "graduated", "tiers": [
        {"up_to": 100, "unit_price": "0"},
        {"up_to": 1000, "unit_price": "0.10", "flat_fee": "5"},
        {"up_to": None, "unit_price": "0.05"}]}},
    {"meter": "seats", "price": {"model": "volume", "tiers": [
        {"up_to": 10, "unit_price": "8"}, {"up_to": None, "unit_price": "6", "flat_fee": "0"}]}},
    {"meter": "payments_volume", "price": {"model": "percentage", "rate": "2.9",
                                           "fixed_fee": "0.30", "free_units": 0},
     "minimum_amount": "10.00"},
]


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "currency": "USD",
        "seller": {"name": "Seller Inc", "country": "DE", "tax_id": "DE123456789"},
        "taxes": {"rates": [{"country": "DE", "rate": "19", "name": "VAT"}]},
        "meters": METERS,
        "products": [{"key": "pro", "name": "Pro", "base_price": "49.00", "charges": CHARGES}],
        "customers": [{"id": "cus_a", "name": "A GmbH", "email": "a@a.test", "country": "DE"}],
        "subscriptions": [{"id": "sub_a", "customer": "cus_a", "product": "pro",
                           "start": "2026-01-01",
                           "discounts": [{"name": "Launch", "percent_off": "10",
                                          "duration": "forever"}]}],
    }
    doc.update(changes)
    return doc


def events(tmp_path, name: str, rows: list[tuple[str, str, dict[str, Any]]],
           customer: str = "cus_a"):
    return write_jsonl(tmp_path / f"{name}.jsonl", [
        {"event_id": f"{name}-{i}", "customer_id": customer, "event_name": event,
         "timestamp": ts, "metadata": data} for i, (event, ts, data) in enumerate(rows)])


def october_usage() -> list[tuple[str, str, dict[str, Any]]]:
    rows = [("api.call", "2026-10-05T10:00:00Z", {})] * 2500
    rows += [("llm", "2026-10-06T10:00:00Z", {"tokens": 600_000}),
             ("llm", "2026-10-07T10:00:00Z", {"tokens": 634_567})]
    # 310 GB for the whole month, then +620 GB from 17 October 00:00 (15 of 31 days)
    rows += [("storage", "2026-10-01T00:00:00Z", {"gb": 310}),
             ("storage", "2026-10-17T00:00:00Z", {"gb": 620})]
    rows += [("seats", "2026-10-08T00:00:00Z", {"n": 12})]
    rows += [("payment", f"2026-10-0{d}T00:00:00Z", {"amount": 100}) for d in (1, 2, 3)]
    return [(e, ts, dict(data)) for e, ts, data in rows]


def stored(engine, document_id: int) -> dict[str, Any]:
    """A document's JSON as stored."""
    uow = SqlUnitOfWork(engine)
    with uow.read():
        row = uow.documents.get(document_id)
    assert row is not None
    return json.loads(row.content)


def test_every_model_on_one_invoice(engine, tmp_path):
    apply(engine, parse_catalog(document()))
    ingest(engine, [events(tmp_path, "oct", october_usage())])
    result = draft_period(SqlUnitOfWork(engine), NOV_10, OCT)
    assert result.failures == []
    data = stored(engine, result.document_ids[0])
    got = [(line["kind"], line.get("meter"), line["amount"]) for line in data["lines"]]
    assert got == [
        ("base_fee", None, "49.00"),
        ("usage", "api_calls", "30.00"),          # (2,500 - 1,000) x 0.02
        ("usage", "tokens", "49.40"),             # 1,234,567 tokens = 1,235 packages x 0.04
        ("usage", "storage_gb", "56.00"),         # 610 GB average: 0 + 5 + 510 x 0.10
        ("usage", "seats", "72.00"),              # 12 seats reach tier 2: 12 x 6
        ("usage", "payments_volume", "9.60"),     # 300 x 2.9 % + 3 x 0.30
        ("minimum", "payments_volume", "0.40"),   # topped up to 10.00
        ("discount", None, "-26.64"),             # 10 % of 266.40
    ]
    storage = data["lines"][3]
    assert storage["quantity"] == "610"         # (310 x 31 + 620 x 15) / 31 = 610
    assert [t["units"] for t in storage["detail"]["tiers"]] == ["100", "510"]
    assert data["subtotal"] == "239.76"
    # tax per line: 9.31 + 5.70 + 9.39 + 10.64 + 13.68 + 1.82 + 0.08 - 5.06 = 45.56
    # (19 % of the subtotal would be 45.5544 -> 45.55)
    assert data["taxes"] == [{"name": "VAT", "rate": "19", "category": "S",
                              "base": "239.76", "amount": "45.56"}]
    assert data["total"] == "285.32"


def test_customer_time_zone_moves_events_between_cycles(engine, tmp_path):
    doc = document(customers=[{"id": "cus_a", "name": "A", "email": "a@a.test",
                               "timezone": "Europe/Berlin"}],
                   taxes={"rates": []})
    doc["subscriptions"][0]["discounts"] = []
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "edges", [
        ("api.call", "2026-09-30T22:30:00Z", {}),     # 1 Oct 00:30 in Berlin: October
        ("api.call", "2026-09-30T21:30:00Z", {}),     # 30 Sep 23:30 in Berlin: September
        ("api.call", "2026-10-31T22:30:00Z", {}),     # 31 Oct 23:30 (CET): October
        ("api.call", "2026-10-31T23:30:00Z", {}),     # 1 Nov 00:30: November
    ])])
    result = draft_period(SqlUnitOfWork(engine), NOV_10, OCT)
    data = stored(engine, result.document_ids[0])
    assert data["lines"][1]["quantity"] == "2"
    assert data["timezone"] == "Europe/Berlin"
    assert data["usage_window"] == {"from": "2026-09-30T22:00:00Z",
                                    "to": "2026-10-31T23:00:00Z"}


def test_a_price_version_applies_from_its_date_and_issued_invoices_never_change(
        engine, tmp_path):
    doc = document(taxes={"rates": []})
    doc["subscriptions"][0]["discounts"] = []
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "oct", [("api.call", "2026-10-05T10:00:00Z", {})] * 1100),
                    events(tmp_path, "nov", [("api.call", "2026-11-05T10:00:00Z", {})] * 1100)])
    october = finalize_period(SqlUnitOfWork(engine), NOV_10, OCT)
    before = stored(engine, october.document_ids[0])
    newer = dict(doc["products"][0], effective_from="2026-11-01", base_price="59.00",
                 charges=[{"meter": "api_calls", "price_per_unit": "0.05",
                           "free_threshold": 1000}])
    apply(engine, parse_catalog(document(products=[doc["products"][0], newer],
                                         taxes={"rates": []})))
    assert stored(engine, october.document_ids[0]) == before
    november = draft_period(SqlUnitOfWork(engine), DEC_10, NOV)
    data = stored(engine, november.document_ids[0])
    assert [line["amount"] for line in data["lines"][:2]] == ["59.00", "5.00"]


def test_late_usage_on_a_graduated_charge_bills_the_tier_difference(engine, tmp_path):
    doc = document(taxes={"rates": []}, products=[{
        "key": "pro", "name": "Pro", "charges": [{"meter": "tokens", "price": {
            "model": "graduated", "tiers": [{"up_to": 1000, "unit_price": "0.01"},
                                            {"up_to": None, "unit_price": "0.001"}]}}]}])
    doc["subscriptions"][0]["discounts"] = []
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "oct", [("llm", "2026-10-05T10:00:00Z",
                                              {"tokens": 900})])])
    october = finalize_period(SqlUnitOfWork(engine), NOV_10, OCT)
    assert october.totals == {"USD": D("9.00")}
    # 300 late tokens for October: 100 more at 0.01 and 200 at 0.001 = 1.20
    ingest(engine, [events(tmp_path, "late", [("llm", "2026-10-30T10:00:00Z",
                                               {"tokens": 300})])])
    november = draft_period(SqlUnitOfWork(engine), DEC_10, NOV)
    data = stored(engine, november.document_ids[0])
    adjustment = data["lines"][-1]
    assert (adjustment["kind"], adjustment["quantity"], adjustment["amount"]) == \
        ("adjustment", "300", "1.20")
    assert adjustment["detail"]["billed_amount"] == "9"
    assert adjustment["detail"]["current_amount"] == "10.2"


def test_a_late_zero_amount_payment_still_costs_its_fixed_fee(engine, tmp_path):
    doc = document(taxes={"rates": []}, products=[{
        "key": "pro", "name": "Pro", "charges": [{"meter": "payments_volume", "price": {
            "model": "percentage", "rate": "2.9", "fixed_fee": "0.30"}}]}])
    doc["subscriptions"][0]["discounts"] = []
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "oct", [("payment", "2026-10-05T10:00:00Z",
                                              {"amount": 100})])])
    finalize_period(SqlUnitOfWork(engine), NOV_10, OCT)
    ingest(engine, [events(tmp_path, "late", [("payment", "2026-10-30T10:00:00Z",
                                               {"amount": 0})])])
    november = draft_period(SqlUnitOfWork(engine), DEC_10, NOV)
    data = stored(engine, november.document_ids[0])
    adjustment = data["lines"][-1]
    assert (adjustment["kind"], adjustment["amount"]) == ("adjustment", "0.30")
    assert adjustment["detail"]["events"] == 1


def test_anniversary_subscription_is_billed_for_its_own_cycle(engine, tmp_path):
    doc = document(taxes={"rates": []})
    doc["subscriptions"] = [{"id": "sub_a", "customer": "cus_a", "product": "pro",
                             "start": "2026-09-15", "billing_anchor": "anniversary"}]
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "e", [
        ("api.call", "2026-09-14T23:59:59Z", {}),   # before the start
        ("api.call", "2026-09-15T00:00:00Z", {}),
        ("api.call", "2026-10-14T23:59:59Z", {}),
        ("api.call", "2026-10-15T00:00:00Z", {}),   # next cycle
    ])])
    result = draft_period(SqlUnitOfWork(engine), NOV_10, OCT)
    data = stored(engine, result.document_ids[0])
    assert (data["period"]["start"], data["period"]["end"]) == ("2026-09-15", "2026-10-15")
    assert data["lines"][1]["quantity"] == "2"


def test_a_period_is_open_until_its_last_customer_time_zone_has_ended_it(engine):
    doc = document(customers=[{"id": "cus_a", "name": "A", "email": "a@a.test",
                               "timezone": "Pacific/Honolulu"}],
                   settings={"grace_period_days": 0})
    apply(engine, parse_catalog(doc))
    # 1 November 05:00 UTC is still 31 October 19:00 in Honolulu
    with pytest.raises(NotFinalizable, match="still open"):
        finalize_period(SqlUnitOfWork(engine), FixedClock(datetime(2026, 11, 1, 5)), OCT)
    finalize_period(SqlUnitOfWork(engine), FixedClock(datetime(2026, 11, 1, 10, 1)), OCT)


def test_overlaps_are_checked_across_versions_and_the_stored_catalog(engine):
    apply(engine, parse_catalog(document()))
    other = document(products=[{"key": "lite", "name": "Lite", "charges": [
        {"meter": "api_calls", "price_per_unit": "0.01"}]}],
        subscriptions=[{"id": "sub_b", "customer": "cus_a", "product": "lite",
                        "start": "2026-06-01"}])
    with pytest.raises(CatalogError, match=r"subscriptions\[0\]: overlaps sub_a"):
        apply(engine, parse_catalog(other))


def test_prune_archives_a_price_version(engine):
    doc = document()
    newer = dict(doc["products"][0], effective_from="2027-01-01", base_price="59.00")
    apply(engine, parse_catalog(document(products=[doc["products"][0], newer])))
    summary = apply(engine, parse_catalog(document()), prune=True)
    assert summary.archived == {"products": 1}


def test_preview_of_an_anniversary_cycle_in_progress(engine, tmp_path):
    from billing_core.services.usage import preview_invoices

    doc = document(taxes={"rates": []})
    doc["subscriptions"] = [{"id": "sub_a", "customer": "cus_a", "product": "pro",
                             "start": "2026-09-15", "billing_anchor": "anniversary"}]
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "e", [("api.call", "2026-11-14T12:00:00Z", {}),
                                           ("api.call", "2026-11-16T12:00:00Z", {}),
                                           ("api.call", "2026-11-19T12:00:00Z", {})])])
    docs = preview_invoices(SqlUnitOfWork(engine), FixedClock(datetime(2026, 11, 20)), "cus_a")
    assert [(d.period, str(d.period_start), d.lines[1].quantity) for d in docs] == [
        ("2026-12", "2026-11-15", 2)]


def test_usage_by_day_counts_the_customer_local_days(engine, tmp_path):
    from datetime import date

    from billing_core.services.usage import usage_report

    doc = document(customers=[{"id": "cus_a", "name": "A", "email": "a@a.test",
                               "timezone": "Europe/Berlin"}])
    apply(engine, parse_catalog(doc))
    ingest(engine, [events(tmp_path, "e", [("api.call", "2026-10-09T22:30:00Z", {})])])
    rows = usage_report(SqlUnitOfWork(engine), "cus_a", date(2026, 10, 9),
                        date(2026, 10, 11), meter="api_calls", by_day=True)
    assert [(str(r.start), r.quantity) for r in rows] == [("2026-10-09", 0),
                                                         ("2026-10-10", 1)]
