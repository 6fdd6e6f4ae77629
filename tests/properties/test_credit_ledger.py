"""The credit ledger under random sequences of grants, usage, invoices, credit notes and
voids (Hypothesis), on SQLite and PostgreSQL: no grant ever holds less than zero, what a
grant holds is the sum of its entries, and the credits on the documents are exactly what
the ledger says was applied and given back."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_core.clock import FixedClock
from billing_core.db.engine import get_engine
from billing_core.db.migrate import upgrade
from billing_core.documents.credit_notes import BadCreditLines
from billing_core.services.credits import CreditError, grant_credit, void_grant
from billing_core.services.documents import InvalidTransition, credit_invoice, void_invoice
from billing_core.services.finalizing import finalize_period
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_schema_url, apply
from tests.credits.test_worked_examples import CLOCKS, catalog, usage

MONTHS = list(CLOCKS)
EXPIRIES = [None, date(2026, 10, 12), date(2026, 10, 31), date(2026, 11, 20),
            date(2026, 12, 31), date(2027, 6, 30)]

grant_op = st.tuples(st.just("grant"), st.integers(1, 30_000),          # cents
                     st.integers(0, 100), st.sampled_from(EXPIRIES),
                     st.sampled_from([(), ("api_calls",), ("base_fee",)]))
usage_op = st.tuples(st.just("usage"), st.integers(0, 20_000))
void_op = st.tuples(st.just("void"), st.integers(0, 10))
credit_op = st.tuples(st.just("credit"), st.integers(0, 10), st.integers(1, 6))
void_grant_op = st.tuples(st.just("void_grant"), st.integers(1, 12))
month_ops = st.lists(st.one_of(grant_op, usage_op, void_op, credit_op, void_grant_op),
                     max_size=6)


def check_ledger(engine) -> None:
    uow = SqlUnitOfWork(engine)
    with uow.read():
        grants = uow.credits.grants()
        entries = uow.credits.entries()
        documents = uow.documents.listing()
    for found in grants:
        mine = [e.amount for e in entries if e.grant_id == found.grant.id]
        assert sum(mine, Decimal(0)) == found.balance
        running = Decimal(0)
        for amount in mine:            # never below zero, at any entry
            running += amount
            assert running >= 0, (found.grant, mine)
        assert found.balance <= found.grant.amount
    # the documents' credit lines are what the ledger applied less what it restored
    money = {g.grant.id for g in grants if g.grant.kind == "money"}
    on_ledger = -sum((e.amount for e in entries
                      if e.grant_id in money and e.kind in ("apply", "restore")), Decimal(0))
    on_documents = Decimal(0)
    for row in documents:
        doc = json.loads(row.content)
        sign = -1 if row.kind == "invoice" else 1
        for line in doc["lines"]:
            if line["kind"] == "credit":
                on_documents += sign * Decimal(line["amount"])
        assert Decimal(doc["total"]) >= 0
    assert on_ledger == on_documents


def run(engine, tmp_path, months) -> None:
    apply(engine, catalog(base_price="20.00"))
    issued: list[str] = []
    clock = FixedClock(datetime(2026, 9, 1, 9))
    for period, ops in zip(MONTHS, months, strict=False):
        for op in ops:
            try:
                if op[0] == "grant":
                    _, cents, priority, expires, targets = op
                    grant_credit(SqlUnitOfWork(engine), clock, "cus_a",
                                 Decimal(cents).scaleb(-2), "USD", priority=priority,
                                 expires=expires, applies_to=targets)
                elif op[0] == "usage":
                    usage(engine, tmp_path, period, op[1])
                elif op[0] == "void" and issued:
                    void_invoice(SqlUnitOfWork(engine), clock, issued[op[1] % len(issued)],
                                 "property test")
                elif op[0] == "credit" and issued:
                    credit_invoice(SqlUnitOfWork(engine), clock, issued[op[1] % len(issued)],
                                   "property test", [op[2]])
                elif op[0] == "void_grant":
                    void_grant(SqlUnitOfWork(engine), clock, op[1], "property test")
            except (CreditError, InvalidTransition, BadCreditLines):
                pass
            check_ledger(engine)
        clock = CLOCKS[period]
        result = finalize_period(SqlUnitOfWork(engine), clock, period)
        issued.extend(result.invoices)
        check_ledger(engine)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(months=st.lists(month_ops, min_size=1, max_size=4))
def test_ledger_never_negative_and_balances_are_sums_sqlite(tmp_path_factory, months):
    folder = tmp_path_factory.mktemp("ledger")
    engine = get_engine(f"sqlite:///{folder / 'billing.db'}")
    upgrade(engine)
    try:
        run(engine, folder, months)
    finally:
        engine.dispose()


@pytest.mark.skipif(not POSTGRES_URL, reason="BILLING_TEST_POSTGRES_URL is not set")
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(months=st.lists(month_ops, min_size=1, max_size=4))
def test_ledger_never_negative_and_balances_are_sums_postgres(tmp_path_factory, months):
    assert POSTGRES_URL is not None
    url, schema = _postgres_schema_url(POSTGRES_URL)
    engine = get_engine(url)
    try:
        upgrade(engine)
        run(engine, tmp_path_factory.mktemp("ledger"), months)
    finally:
        engine.dispose()
        _drop_schema(POSTGRES_URL, schema)
