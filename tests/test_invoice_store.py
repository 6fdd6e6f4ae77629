from datetime import date
from decimal import Decimal

from billing_core.billing import draft_invoices
from billing_core.catalog_store import load_catalog
from billing_core.invoice_store import record_invoices
from billing_core.metering import MeterUsage, PeriodUsage
from billing_core.periods import BillingPeriod
from tests.conftest import catalog_with

OCT = BillingPeriod.parse("2026-10")


def usage_for(catalog, calls):
    usage = PeriodUsage(period=OCT, subscriptions=list(catalog.subscriptions))
    for s in catalog.subscriptions:
        usage.usage[s.id] = {"api_calls": MeterUsage("api_calls", Decimal(calls))}
    return usage


def test_rerun_keeps_numbers_and_revises_only_changed_invoices(engine):
    from billing_core.catalog_store import apply_catalog

    customers = [{"id": f"cus_{i}", "name": f"C{i}", "email": f"c{i}@x.test"} for i in range(3)]
    subs = [{"id": f"sub_{i}", "customer": f"cus_{i}", "product": "pro", "start": "2026-01-01"}
            for i in range(3)]
    apply_catalog(engine, catalog_with(customers=customers, subscriptions=subs))
    catalog = load_catalog(engine)
    first = record_invoices(engine, draft_invoices(catalog, usage_for(catalog, 2500)), None,
                            today=date(2026, 11, 1))
    numbers = [r.invoice.invoice_number for r in first]
    assert numbers == ["INV-202610-00001", "INV-202610-00002", "INV-202610-00003"]
    assert {r.status for r in first} == {"created"}

    again = record_invoices(engine, draft_invoices(catalog, usage_for(catalog, 2500)), None,
                            today=date(2026, 11, 5))
    assert [r.invoice.invoice_number for r in again] == numbers
    assert {r.status for r in again} == {"unchanged"}
    assert {r.invoice.issue_date for r in again} == {date(2026, 11, 1)}

    late = usage_for(catalog, 2500)
    late.usage["sub_1"] = {"api_calls": MeterUsage("api_calls", Decimal(2600))}
    revised = record_invoices(engine, draft_invoices(catalog, late), None,
                              today=date(2026, 11, 6))
    assert [r.status for r in revised] == ["unchanged", "updated", "unchanged"]
    assert revised[1].invoice.invoice_number == "INV-202610-00002"
    assert revised[1].revision == 2 and revised[1].invoice.issue_date == date(2026, 11, 6)
    assert revised[1].invoice.total == Decimal("81.00")   # 49 + (2600-1000) x 0.02
