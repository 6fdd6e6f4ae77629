"""One subscription that cannot be measured, priced or rendered costs no other: the run
bills the others and names the one that failed, with its customer and the reason."""

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from billing_core.periods import BillingPeriod
from billing_core.render.batch import render_batch
from billing_core.services.drafting import draft_period
from billing_core.services.rendering import render_documents
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import CLOCK, apply, catalog_document, ingest, parse_catalog, write_jsonl

OCT = BillingPeriod.parse("2026-10")


@pytest.fixture
def two_customers(engine, tmp_path):
    doc = catalog_document()
    doc["customers"] = [{"id": c, "name": c, "email": f"{c}@x.test"} for c in ("cus_a", "cus_b")]
    doc["subscriptions"] = [{"id": f"sub_{c}", "customer": f"cus_{c}", "product": "pro",
                             "start": "2026-01-01"} for c in ("a", "b")]
    apply(engine, parse_catalog(doc))
    ingest(engine, [write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"{c}{i}", "customer_id": f"cus_{c}", "event_name": "api.call",
         "timestamp": "2026-10-05T00:00:00Z", "metadata": {"method": "POST",
                                                          "endpoint": "/v1/x"}}
        for c in "ab" for i in range(1500)])])
    return engine


def legacy_event(engine, event_id, customer, metadata_text):
    """An event stored before today's limits existed (written straight into the table)."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO event (event_id, customer_id, event_name, ts, metadata, payload_hash, "
            "ingested_at, source) VALUES (:id, :c, 'llm.completion', :ts, "
            + ("CAST(:m AS jsonb)" if engine.dialect.name == "postgresql" else ":m")
            + ", 'x', :ts, 'legacy')"),
            {"id": event_id, "c": customer, "ts": datetime(2026, 10, 6), "m": metadata_text})


def test_a_value_that_cannot_be_priced_fails_only_its_subscription(two_customers):
    legacy_event(two_customers, "huge", "cus_b", '{"tokens": 1e400}')
    result = draft_period(SqlUnitOfWork(two_customers), CLOCK, OCT)
    assert result.created == 1                                  # cus_a is billed
    [failure] = result.failures
    assert (failure["subscription"], failure["customer"], failure["period"]) == \
        ("sub_b", "cus_b", "2026-10")
    assert "InvalidOperation" in failure["reason"]
    with two_customers.connect() as conn:
        assert conn.execute(text("SELECT customer_id FROM document")).scalars().all() == \
            ["cus_a"]


def test_a_value_the_database_cannot_measure_fails_only_its_subscription(two_customers):
    if two_customers.dialect.name == "postgresql":
        pytest.skip("jsonb never holds malformed JSON; the savepoint path is the same")
    legacy_event(two_customers, "broken", "cus_a", '{"tokens": ')   # malformed JSON text
    result = draft_period(SqlUnitOfWork(two_customers), CLOCK, OCT)
    assert result.created == 1
    [failure] = result.failures
    assert failure["customer"] == "cus_a" and "could not be measured" in failure["reason"]
    assert "malformed JSON" in failure["reason"]


def test_a_document_that_cannot_be_rendered_fails_only_itself(two_customers, tmp_path: Path):
    draft_period(SqlUnitOfWork(two_customers), CLOCK, OCT)
    with two_customers.begin() as conn:
        conn.execute(text("UPDATE document SET content = '{\"broken\": true}' "
                          "WHERE customer_id = 'cus_b'"))
    report = render_documents(SqlUnitOfWork(two_customers), CLOCK, tmp_path, render_batch,
                              periods=["2026-10"])
    assert report.rendered == 1 and len(report.paths) == 1
    [failure] = report.failures
    assert failure["customer"] == "cus_b" and "could not be rendered" in failure["reason"]
