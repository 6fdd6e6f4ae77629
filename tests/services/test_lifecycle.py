"""The invoice lifecycle on SQLite and PostgreSQL: drafts, finalization, immutability,
late usage (both policies), payments, voids and credit notes."""

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from billing_core.clock import FixedClock
from billing_core.periods import BillingPeriod
from billing_core.render.batch import render_batch
from billing_core.services.documents import (
    InvalidTransition,
    credit_invoice,
    list_documents,
    pay_invoice,
    show_document,
    void_invoice,
)
from billing_core.services.drafting import PeriodNotStarted, draft_period
from billing_core.services.finalizing import NotFinalizable, finalize_period
from billing_core.services.rendering import render_documents
from billing_core.services.unit_of_work import SqlUnitOfWork
from billing_core.services.usage import preview_invoices, usage_report
from tests.conftest import apply, catalog_document, ingest, parse_catalog, write_jsonl

OCT, NOV, DEC = (BillingPeriod.parse(p) for p in ("2026-10", "2026-11", "2026-12"))
NOV_10 = FixedClock(datetime(2026, 11, 10, 9, 0))     # October closed, grace over
NOV_02 = FixedClock(datetime(2026, 11, 2, 9, 0))      # October inside its grace period
DEC_10 = FixedClock(datetime(2026, 12, 10, 9, 0))
JAN_10 = FixedClock(datetime(2027, 1, 10, 9, 0))


def catalog(**changes):
    doc = catalog_document()
    doc["customers"] = [
        {"id": "cus_acme", "name": "Acme Corp", "email": "billing@acme.test",
         "address": "1 Main St"},
        {"id": "cus_beta", "name": "Beta LLC", "email": "ap@beta.test",
         "payment_terms_days": 14}]
    doc["subscriptions"] = [
        {"id": "sub_acme", "customer": "cus_acme", "product": "pro", "start": "2026-01-01"},
        {"id": "sub_beta", "customer": "cus_beta", "product": "pro", "start": "2026-01-01"}]
    for key, value in changes.items():
        doc[key] = value
    return parse_catalog(doc)


def calls(tmp_path, name, count, customer="cus_acme", day="2026-10-10", start=0):
    return write_jsonl(tmp_path / name, [
        {"event_id": f"{name}-{customer}-{start + i}", "customer_id": customer,
         "event_name": "api.call", "timestamp": f"{day}T12:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/chat"}} for i in range(count)])


def uow(engine):
    return SqlUnitOfWork(engine)


def draft(engine, period, clock=NOV_10, **kw):
    return draft_period(uow(engine), clock, period, **kw)


def finalize(engine, period, clock=NOV_10, **kw):
    return finalize_period(uow(engine), clock, period, **kw)


def render(engine, out: Path, clock=NOV_10, periods=("2026-10", "2026-11", "2026-12")):
    return render_documents(uow(engine), clock, out, render_batch, periods=periods)


def docs(engine, clock=NOV_10, **kw):
    return {v.reference: v for v in list_documents(uow(engine), clock, **kw)}


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def billed(engine, tmp_path):
    """October drafted with 2,500 API calls for Acme and 500 for Beta."""
    apply(engine, catalog())
    ingest(engine, [calls(tmp_path, "a.jsonl", 2500), calls(tmp_path, "b.jsonl", 500,
                                                            customer="cus_beta")])
    return engine


def test_drafts_have_references_not_numbers_and_a_draft_mark(billed, tmp_path):
    result = draft(billed, OCT)
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    assert result.totals == {"USD": Decimal("128.00")}   # 49 + 30 + 49 + 0
    found = docs(billed)
    assert all(ref.startswith("DRAFT-202610-") for ref in found)
    assert {v.status for v in found.values()} == {"draft"}
    assert {v.row.number for v in found.values()} == {None}
    report = render(billed, tmp_path / "out")
    assert report.rendered == 2
    pdfs = list((tmp_path / "out" / "2026-10" / "drafts").glob("*.pdf"))
    assert len(pdfs) == 2
    assert "DRAFT" in PdfReader(pdfs[0]).pages[0].extract_text()
    # Nothing changed: nothing is rendered again.
    again = draft(billed, OCT)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert render(billed, tmp_path / "out").rendered == 0


def test_a_draft_is_revised_only_when_its_figures_change(billed, tmp_path):
    draft(billed, OCT)
    render(billed, tmp_path / "out")
    ref = next(r for r, v in docs(billed).items() if v.row.customer_id == "cus_acme")
    # A new address changes the document, not the figures: same revision, rendered again.
    apply(billed, catalog(customers=[
        {"id": "cus_acme", "name": "Acme Corp", "email": "billing@acme.test",
         "address": "2 New Road"},
        {"id": "cus_beta", "name": "Beta LLC", "email": "ap@beta.test",
         "payment_terms_days": 14}]))
    result = draft(billed, OCT)
    assert (result.updated, result.unchanged) == (0, 2)
    assert docs(billed)[ref].row.revision == 1
    assert "2 New Road" in docs(billed)[ref].document.customer.address
    assert render(billed, tmp_path / "out").rendered == 1
    # More usage changes the figures: revision 2.
    ingest(billed, [calls(tmp_path, "more.jsonl", 100)])
    result = draft(billed, OCT)
    assert (result.updated, result.unchanged) == (1, 1)
    assert docs(billed)[ref].row.revision == 2
    assert docs(billed)[ref].row.total == Decimal("81.00")   # 49 + 1600 x 0.02


def test_a_future_period_cannot_be_drafted(billed):
    with pytest.raises(PeriodNotStarted, match="2027-01 has not started"):
        draft(billed, BillingPeriod.parse("2027-01"))


def test_finalizing_an_open_or_grace_period_needs_force(billed):
    with pytest.raises(NotFinalizable, match=r"inside its grace period of 3 day.*2026-11-04"):
        finalize(billed, OCT, clock=NOV_02)
    with pytest.raises(NotFinalizable, match="2026-11 is still open"):
        finalize(billed, NOV, clock=NOV_10)
    assert {v.status for v in docs(billed).values()} <= {"draft"}
    forced = finalize(billed, OCT, clock=NOV_02, force=True)
    assert forced.invoices == ["INV-2026-000001", "INV-2026-000002"]


def test_finalizing_numbers_dates_and_freezes(billed, tmp_path):
    result = finalize(billed, OCT)
    # Numbers in a fixed order (customer, subscription), gapless.
    assert result.invoices == ["INV-2026-000001", "INV-2026-000002"]
    found = docs(billed)
    acme, beta = found["INV-2026-000001"], found["INV-2026-000002"]
    assert (acme.row.customer_id, beta.row.customer_id) == ("cus_acme", "cus_beta")
    assert acme.row.issue_date == date(2026, 11, 10)
    assert acme.row.due_date == date(2026, 12, 10)       # 30 days (settings)
    assert beta.row.due_date == date(2026, 11, 24)       # the customer's 14 days
    assert acme.status == "finalized" and acme.row.total == Decimal("79.00")
    report = render(billed, tmp_path / "out")
    assert report.rendered == 2
    folder = tmp_path / "out" / "2026-10"
    pdf = folder / "INV-2026-000001.pdf"
    recorded = docs(billed)["INV-2026-000001"].row.file_hashes
    assert recorded["pdf"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert not list((folder / "drafts").glob("*"))       # the drafts' files are gone
    data = json.loads((folder / "INV-2026-000001.json").read_text())
    assert (data["invoice_number"], data["issue_date"], data["due_date"]) == \
        ("INV-2026-000001", "2026-11-10", "2026-12-10")
    # Finalizing again issues nothing new.
    again = finalize(billed, OCT, clock=FixedClock(datetime(2026, 11, 20)))
    assert again.invoices == [] and again.draft.issued == 2
    assert render(billed, tmp_path / "out").rendered == 0


def test_issued_invoices_never_change(billed, tmp_path):
    """Re-runs, late events, a price change and a new seller address leave the issued
    invoice's stored document and its files byte for byte as they were."""
    finalize(billed, OCT)
    render(billed, tmp_path / "out")
    folder = tmp_path / "out" / "2026-10"
    before = files_of(folder)
    with billed.connect() as conn:
        stored = dict(conn.execute(text("SELECT number, content FROM document")).all())
    ingest(billed, [calls(tmp_path, "late.jsonl", 300)])
    changed = catalog().model_dump(mode="json")
    changed["seller"] = {"name": "New Seller Inc.", "address": "9 Elsewhere"}
    changed["products"][0]["charges"][0]["price_per_unit"] = "0.05"
    apply(billed, parse_catalog(changed))
    draft(billed, OCT, clock=DEC_10)
    finalize(billed, OCT, clock=DEC_10)
    render(billed, tmp_path / "out", clock=DEC_10)
    assert files_of(folder) == before
    with billed.connect() as conn:
        assert dict(conn.execute(text("SELECT number, content FROM document "
                                      "WHERE kind = 'invoice' AND number IS NOT NULL")
                                 ).all()) == stored


def test_files_missing_are_rendered_again_to_the_same_bytes(billed, tmp_path):
    finalize(billed, OCT)
    render(billed, tmp_path / "a")
    original = files_of(tmp_path / "a" / "2026-10")
    for path in (tmp_path / "a" / "2026-10").glob("INV-2026-000001.*"):
        path.unlink()
    report = render(billed, tmp_path / "a")
    assert report.rendered == 1 and report.differing == []
    assert files_of(tmp_path / "a" / "2026-10") == original
    # Rendering from the database into another folder gives the same bytes too.
    render(billed, tmp_path / "b")
    assert files_of(tmp_path / "b" / "2026-10") == original


def test_late_usage_becomes_an_adjustment_line_on_the_next_invoice(billed, tmp_path):
    finalize(billed, OCT)
    # 1,234 API calls for October arrive after it was finalized.
    ingest(billed, [calls(tmp_path, "late.jsonl", 1234)])
    ingest(billed, [calls(tmp_path, "nov.jsonl", 10, day="2026-11-05")])
    result = draft(billed, NOV, clock=DEC_10)
    assert [(i.subscription_id, i.period, i.meter, i.billed, i.current, i.action)
            for i in result.late] == [("sub_acme", "2026-10", "api_calls", Decimal(2500),
                                       Decimal(3734), "next_invoice")]
    nov = next(v for v in docs(billed, clock=DEC_10, period="2026-11").values()
               if v.row.customer_id == "cus_acme")
    adjustment = nov.document.lines[-1]
    assert adjustment.kind == "adjustment"
    assert adjustment.description == "Usage adjustment, October 2026: 1,234 API calls"
    assert (adjustment.usage_period, adjustment.quantity, adjustment.amount) == \
        ("2026-10", Decimal(1234), Decimal("24.68"))    # 1,234 x 0.02, all past the free 1,000
    # November itself: 49 + 10 calls (free) + the adjustment.
    assert nov.row.total == Decimal("73.68")
    # The October invoice is untouched.
    assert docs(billed, clock=DEC_10)["INV-2026-000001"].row.total == Decimal("79.00")
    # Once November is issued, the adjustment is billed: nothing is billed twice.
    finalize(billed, NOV, clock=DEC_10)
    later = draft(billed, DEC, clock=JAN_10)
    assert later.late == []
    dec = next(v for v in docs(billed, clock=JAN_10, period="2026-12").values()
               if v.row.customer_id == "cus_acme")
    assert [line.kind for line in dec.document.lines] == ["base_fee", "usage", "usage",
                                                          "usage"]


def test_late_usage_inside_the_free_threshold_costs_nothing(billed, tmp_path):
    finalize(billed, OCT)
    ingest(billed, [calls(tmp_path, "late.jsonl", 300, customer="cus_beta")])  # 500 -> 800
    draft(billed, NOV, clock=DEC_10)
    beta = next(v for v in docs(billed, clock=DEC_10, period="2026-11").values()
                if v.row.customer_id == "cus_beta")
    adjustment = beta.document.lines[-1]
    assert (adjustment.quantity, adjustment.free_units, adjustment.amount) == \
        (Decimal(300), Decimal(300), Decimal("0.00"))


def test_late_usage_is_never_placed_twice(billed, tmp_path):
    """Two drafts after the late period (November, then December before November is
    issued): the adjustment is on one of them only."""
    finalize(billed, OCT)
    ingest(billed, [calls(tmp_path, "late.jsonl", 100)])
    draft(billed, NOV, clock=JAN_10)
    december = draft(billed, DEC, clock=JAN_10)
    assert december.late == []
    adjustments = [line for v in docs(billed, clock=JAN_10).values()
                   for line in v.document.lines if line.kind == "adjustment"]
    assert len(adjustments) == 1 and adjustments[0].quantity == 100


def test_credit_note_and_reissue_policy(engine, tmp_path):
    doc = catalog().model_dump(mode="json")
    doc["settings"] = {"late_usage": "credit_note_and_reissue"}
    apply(engine, parse_catalog(doc))
    ingest(engine, [calls(tmp_path, "a.jsonl", 2500)])
    finalize(engine, OCT)
    ingest(engine, [calls(tmp_path, "late.jsonl", 500)])
    result = finalize(engine, OCT, clock=DEC_10)
    assert result.invoices == ["INV-2026-000003"] and result.credit_notes == ["CN-2026-000001"]
    found = docs(engine, clock=DEC_10)
    original, replacement, note = (found["INV-2026-000001"], found["INV-2026-000003"],
                                   found["CN-2026-000001"])
    assert original.status == "void" and original.row.superseded_by_id == replacement.row.id
    assert replacement.row.total == Decimal("89.00")     # 49 + 2000 x 0.02
    assert replacement.row.generation == 2
    assert note.row.total == Decimal("79.00") and note.document.credits_number == \
        "INV-2026-000001"
    assert any("Replaces invoice INV-2026-000001" in n for n in replacement.document.notes)
    # Nothing more to do afterwards.
    again = finalize(engine, OCT, clock=DEC_10)
    assert again.invoices == [] and again.credit_notes == [] and again.draft.late == []


def test_differences_older_than_the_lookback_are_reported_not_billed(engine, tmp_path):
    doc = catalog().model_dump(mode="json")
    doc["settings"] = {"late_usage_lookback_periods": 0}
    apply(engine, parse_catalog(doc))
    ingest(engine, [calls(tmp_path, "a.jsonl", 2500)], clock=NOV_02)
    finalize(engine, OCT)
    from billing_core.services.runs import billing_run

    with billing_run(uow(engine), NOV_10, "draft", "2026-11"):
        pass   # the run that late events are measured from
    ingest(engine, [calls(tmp_path, "late.jsonl", 50)], clock=DEC_10)
    with billing_run(uow(engine), DEC_10, "draft", "2026-11") as run:
        result = draft(engine, NOV, clock=DEC_10, run_id=run.run_id)
    assert result.late == []
    assert result.older_late == [{"customer": "cus_acme", "period": "2026-10", "events": 50}]
    assert not any(line.kind == "adjustment" for v in docs(engine, clock=DEC_10).values()
                   for line in v.document.lines)


def test_payments_voids_and_credit_notes(billed, tmp_path):
    finalize(billed, OCT)
    row, new = pay_invoice(uow(billed), NOV_10, "INV-2026-000001", date(2026, 11, 15), "W-1")
    assert new and row.status == "paid" and row.paid_date == date(2026, 11, 15)
    row, new = pay_invoice(uow(billed), NOV_10, "INV-2026-000001", reference="W-1")
    assert not new                                       # the same payment again: no-op
    with pytest.raises(InvalidTransition, match="already paid"):
        pay_invoice(uow(billed), NOV_10, "INV-2026-000001", reference="W-2")
    with pytest.raises(InvalidTransition, match="paid and cannot be voided"):
        void_invoice(uow(billed), NOV_10, "INV-2026-000001", "mistake")
    _, number = void_invoice(uow(billed), NOV_10, "INV-2026-000002", "wrong customer")
    assert number == "CN-2026-000001"
    with pytest.raises(InvalidTransition, match="already void"):
        void_invoice(uow(billed), NOV_10, "INV-2026-000002", "again")
    with pytest.raises(InvalidTransition, match="void"):
        pay_invoice(uow(billed), NOV_10, "INV-2026-000002")
    note = show_document(uow(billed), NOV_10, "CN-2026-000001")
    assert note.document.credits_number == "INV-2026-000002" and note.row.total == \
        Decimal("49.00")
    # A partial credit note on the paid invoice: line 2 (API calls, 30.00).
    _, partial = credit_invoice(uow(billed), NOV_10, "INV-2026-000001", "goodwill", [2])
    assert partial == "CN-2026-000002"
    view = show_document(uow(billed), NOV_10, "INV-2026-000001")
    assert view.credited == Decimal("30.00") and view.status == "paid"
    with pytest.raises(InvalidTransition, match="credited already"):
        credit_invoice(uow(billed), NOV_10, "INV-2026-000001", "again", [2])
    render(billed, tmp_path / "out")
    text_ = PdfReader(tmp_path / "out" / "2026-10" / "CN-2026-000002.pdf").pages[0] \
        .extract_text()
    assert "Credit note" in text_ and "INV-2026-000001" in text_ and "$30.00" in text_
    # An unpaid invoice past its due date shows as overdue (derived, not stored).
    assert docs(billed, clock=JAN_10, status="overdue") == {}
    finalize(billed, NOV, clock=JAN_10)
    overdue = docs(billed, clock=FixedClock(datetime(2027, 3, 1)), status="overdue")
    assert overdue and {v.row.status for v in overdue.values()} == {"finalized"}


def test_credit_note_numbers_are_their_own_gapless_series(billed):
    finalize(billed, OCT)
    numbers = [void_invoice(uow(billed), NOV_10, n, "test")[1]
               for n in ("INV-2026-000001", "INV-2026-000002")]
    assert numbers == ["CN-2026-000001", "CN-2026-000002"]
    finalize(billed, NOV, clock=DEC_10)
    assert sorted(r for r in docs(billed, clock=DEC_10) if r.startswith("INV")) == \
        [f"INV-2026-00000{i}" for i in range(1, 5)]


def test_the_preview_writes_nothing(billed, tmp_path):
    ingest(billed, [calls(tmp_path, "nov.jsonl", 1500, day="2026-11-05")])
    with billed.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM document")).scalar_one()
    docs_ = preview_invoices(uow(billed), NOV_10, "cus_acme")
    assert len(docs_) == 1 and docs_[0].number is None
    assert docs_[0].total == Decimal("59.00")            # 49 + 500 x 0.02
    earlier = preview_invoices(uow(billed), NOV_10, "cus_acme", datetime(2026, 11, 5))
    assert earlier[0].total == Decimal("49.00")          # the events are at 12:00 that day
    with billed.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM document")).scalar_one() == before


def test_usage_over_any_range_by_day(billed, tmp_path):
    ingest(billed, [calls(tmp_path, "d.jsonl", 7, day="2026-10-11")])
    rows = usage_report(uow(billed), "cus_acme", date(2026, 10, 9), date(2026, 10, 12),
                        meter="api_calls", by_day=True)
    assert [(r.start.day, r.quantity) for r in rows] == [(9, 0), (10, 2500), (11, 7)]
    total = usage_report(uow(billed), "cus_acme", date(2026, 10, 1), date(2026, 11, 1))
    assert {r.meter: r.quantity for r in total}["api_calls"] == 2507


def test_zero_amount_invoices_are_issued_as_paid(engine, tmp_path):
    doc = catalog().model_dump(mode="json")
    doc["products"][0]["base_price"] = "0"
    apply(engine, parse_catalog(doc))
    result = finalize(engine, OCT)
    assert len(result.invoices) == 2
    assert {v.status for v in docs(engine).values()} == {"paid"}
