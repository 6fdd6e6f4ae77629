"""Drafting writes new drafts page by page and finalizing issues them page by page,
each inside one transaction, and many customers' grants are read in chunks: whatever the
page and chunk sizes, the numbers, credits, expiries, billed usage and queued messages are
the same (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from billing_core.catalog import parse_catalog
from billing_core.clock import FixedClock
from billing_core.db.repositories import credits as credit_repository
from billing_core.periods import BillingPeriod
from billing_core.services import drafting, finalizing
from billing_core.services.credits import grant_credit
from billing_core.services.finalizing import finalize_period
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, ingest, write_jsonl

D = Decimal
OCT = BillingPeriod.parse("2026-10")
NOV_10 = FixedClock(datetime(2026, 11, 10, 9))
SEP_1 = FixedClock(datetime(2026, 9, 1, 9))
SUBSCRIPTIONS = [("sub_a1", "cus_a", 1), ("sub_a2", "cus_a", 2), ("sub_a3", "cus_a", 3),
                 ("sub_b", "cus_b", 1)]    # (id, customer, product and meter)


def catalog():
    return parse_catalog({
        "currency": "USD",
        "seller": {"name": "Seller Inc", "country": "US"},
        "meters": [{"key": f"m{i}", "name": f"Calls {i}", "event_name": f"call.{i}",
                    "aggregation": "sum", "over_property": "n"} for i in (1, 2, 3)],
        "products": [{"key": f"p{i}", "name": f"Product {i}", "charges": [
            {"meter": f"m{i}", "price_per_unit": "1.00"}]} for i in (1, 2, 3)],
        "customers": [{"id": c, "name": c.upper(), "email": f"{c}@example.test",
                       "country": "US"} for c in ("cus_a", "cus_b")],
        "subscriptions": [{"id": s, "customer": c, "product": f"p{i}",
                           "start": "2026-10-01"} for s, c, i in SUBSCRIPTIONS]})


@pytest.mark.parametrize(("page", "chunk"), [(1, 1), (2, 1), (500, 5000)])
def test_pages_and_chunks_give_the_same_month(engine, tmp_path, monkeypatch, page, chunk):
    monkeypatch.setattr(drafting, "PAGE", page)
    monkeypatch.setattr(finalizing, "PAGE", page)
    monkeypatch.setattr(credit_repository, "CHUNK", chunk)
    apply(engine, catalog())
    ingest(engine, [write_jsonl(tmp_path / "oct.jsonl", [
        {"event_id": s, "customer_id": c, "event_name": f"call.{i}",
         "timestamp": "2026-10-15T12:00:00Z", "metadata": {"n": 2 if c == "cus_b" else 10}}
        for s, c, i in SUBSCRIPTIONS])])
    grant_credit(SqlUnitOfWork(engine), SEP_1, "cus_a", D("25.00"), "USD")
    grant_credit(SqlUnitOfWork(engine), SEP_1, "cus_b", D("3.00"), "USD",
                 expires=date(2026, 10, 31))

    result = finalize_period(SqlUnitOfWork(engine), NOV_10, OCT)

    assert result.draft.failures == [] and result.draft.created == 4
    assert len(result.invoices) == 4 and result.queued == 4
    uow = SqlUnitOfWork(engine)
    with uow.read():
        rows = {r.subscription_id: r for r in uow.documents.by_ids(result.document_ids)}
        messages = uow.outbox.listing()
        grants = {g.grant.customer_id: g for g in uow.credits.grants(kind="money")}
        entries = [(e.customer_id, e.kind, e.amount) for e in uow.credits.entries()]
        billed = uow.billed.count()
    # numbers follow (customer, subscription); each customer's credit is spent invoice
    # after invoice, across pages
    assert [rows[s].number for s, _, _ in SUBSCRIPTIONS] == result.invoices
    assert [rows[s].sequence for s, _, _ in SUBSCRIPTIONS] == [1, 2, 3, 4]
    assert [(rows[s].status, rows[s].amount_due) for s, _, _ in SUBSCRIPTIONS] == [
        ("paid", D("0.00")), ("paid", D("0.00")), ("finalized", D("5.00")),
        ("paid", D("0.00"))]
    assert result.totals == {"USD": D("5.00")}
    for sub, _, _ in SUBSCRIPTIONS:
        stored = json.loads(rows[sub].content)
        assert stored["invoice_number"] == rows[sub].number
        assert D(stored["amount_due"]) == rows[sub].amount_due
    assert sorted(entries) == sorted([
        ("cus_a", "grant", D("25.00")), ("cus_a", "apply", D("-10.00")),
        ("cus_a", "apply", D("-10.00")), ("cus_a", "apply", D("-5.00")),
        ("cus_b", "grant", D("3.00")), ("cus_b", "apply", D("-2.00")),
        ("cus_b", "expire", D("-1.00"))])
    assert grants["cus_a"].balance == 0 and grants["cus_b"].balance == 0
    assert billed == 4
    assert sorted((m.reference, m.sequence, m.recipients["to"][0]) for m in messages) == \
        sorted((rows[s].number, 1, f"{c}@example.test") for s, c, _ in SUBSCRIPTIONS)

    again = finalize_period(SqlUnitOfWork(engine), NOV_10, OCT)
    assert again.invoices == [] and again.queued == 0
    with uow.read():
        assert len(uow.outbox.listing()) == 4
        assert len(uow.credits.entries()) == len(entries)
