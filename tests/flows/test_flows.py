"""Real Prefect flow runs (ephemeral server): drafting, finalizing, history, artifacts,
the monthly run."""

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from billing_core.services.runs import list_runs
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import CLOCK, apply, ingest, write_jsonl

pytestmark = pytest.mark.flow


@pytest.fixture
def env(db_url, engine, monkeypatch, tmp_path):
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    monkeypatch.setenv("BILLING_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("BILLING_NOW", "2026-11-10T09:00:00Z")
    return engine


def events(n_calls=2500, tokens=(1073741824, 536870912)):
    out = [{"event_id": f"c{i}", "customer_id": "cus_acme", "event_name": "api.call",
            "timestamp": "2026-10-10T12:00:00Z",
            "metadata": {"method": "POST", "endpoint": "/v1/chat"}} for i in range(n_calls)]
    out += [{"event_id": f"t{i}", "customer_id": "cus_acme", "event_name": "llm.completion",
             "timestamp": "2026-10-11T00:00:00Z", "metadata": {"tokens": t}}
            for i, t in enumerate(tokens)]
    out += [{"event_id": f"u{i}", "customer_id": "cus_acme", "event_name": "concurrent.users",
             "timestamp": "2026-10-12T00:00:00Z", "metadata": {"count": c}}
            for i, c in enumerate([15, 250, 18])]
    out.append({"event_id": "t_str", "customer_id": "cus_acme", "event_name": "llm.completion",
                "timestamp": "2026-10-11T00:00:00Z", "metadata": {"tokens": "150"}})
    return out


def artifacts(client, key):
    found = [a for a in client.read_latest_artifacts() if a.key == key]
    assert found, key
    data = found[0].data
    return json.loads(data) if isinstance(data, str) and data.startswith("[") else data


def test_draft_then_finalize_as_flow_runs(env, issue_catalog, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.billing import bill_cycle
    from flows.finalize import finalize_invoices

    apply(env, issue_catalog)
    ingest(env, [write_jsonl(tmp_path / "e.jsonl", events())])
    out = tmp_path / "invoices"
    drafted = bill_cycle(period="2026-10", out_dir=str(out))
    assert (drafted["drafts"], drafted["created"], drafted["rendered"]) == (1, 1, 1)
    # 49 + (2500-1000) x 0.02 + 1610612736 x 0.00004 + (250-100) x 0.50
    assert drafted["totals"] == {"USD": "64578.51"}
    assert len(list((out / "2026-10" / "drafts").glob("DRAFT-*.pdf"))) == 1

    issued = finalize_invoices(period="2026-10", out_dir=str(out))
    assert issued["invoices"] == ["INV-2026-000001"]
    assert issued["totals"] == {"USD": "64578.51"}
    pdf = (out / "2026-10" / "INV-2026-000001.pdf").read_bytes()
    text_ = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "$64,578.51" in text_ and "INV-2026-000001" in text_ and "DRAFT" not in text_
    assert not list((out / "2026-10" / "drafts").glob("*"))

    runs = list_runs(SqlUnitOfWork(env), CLOCK)
    assert [(r.kind, r.status) for r in runs] == [("finalize", "completed"),
                                                 ("draft", "completed")]
    assert runs[0].invoices_finalized == 1 and runs[0].flow_run_id
    assert runs[1].skipped == {"tokens": {"missing_property": 0, "not_a_number": 1}}
    assert runs[1].totals == {"USD": "64578.51"}

    with get_client(sync_client=True) as client:
        assert client.read_flow_run(runs[0].flow_run_id).state.is_completed()
        rows = artifacts(client, "usage-2026-10")
        calls = next(r for r in rows if r["meter"] == "api_calls")
        assert (calls["consumed"], calls["free"], calls["billable"], calls["amount"]) == \
            ("2500", "1000", "1500", "30.00")
        summary = artifacts(client, "issued-2026-10")
        assert "invoices finalized: **1**" in summary and "64578.51 USD" in summary

    # Running either again issues and renders nothing.
    again = finalize_invoices(period="2026-10", out_dir=str(out))
    assert (again["invoices"], again["rendered"]) == ([], 0)
    redraft = bill_cycle(period="2026-10", out_dir=str(out))
    assert (redraft["drafts"], redraft["issued"], redraft["rendered"]) == (0, 1, 0)
    with env.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM document")).scalar_one() == 1


def test_bad_period_is_refused_by_the_flow_parameters(env):
    from flows.billing import bill_cycle

    with pytest.raises(Exception, match=r"period must be YYYY-MM \(e.g. 2026-10\), got "
                                        r"'2026-13'"):
        bill_cycle(period="2026-13")


def test_a_failed_run_is_recorded(env):
    from flows.billing import bill_cycle

    with pytest.raises(Exception, match="no catalog applied"):
        bill_cycle(period="2026-10")
    run = list_runs(SqlUnitOfWork(env), CLOCK)[0]
    assert run.status == "failed" and "no catalog applied" in run.error


def test_finalize_refuses_a_month_in_its_grace_period(env, issue_catalog, monkeypatch):
    from flows.finalize import finalize_invoices

    apply(env, issue_catalog)
    monkeypatch.setenv("BILLING_NOW", "2026-11-02T09:00:00Z")
    with pytest.raises(Exception, match="inside its grace period"):
        finalize_invoices(period="2026-10")
    run = list_runs(SqlUnitOfWork(env), CLOCK)[0]
    assert run.status == "failed" and "--force" in run.error


def test_monthly_billing_ingests_the_inbox_and_drafts_the_month(env, issue_catalog, tmp_path):
    from flows.monthly import monthly_billing

    apply(env, issue_catalog)
    inbox = Path(tmp_path / "inbox")
    inbox.mkdir()
    write_jsonl(inbox / "october.jsonl", events(n_calls=1200, tokens=(1000,)))
    result = monthly_billing(out_dir=str(tmp_path / "out"))   # the last closed month
    assert result["ingested"]["ingested"] == 1200 + 1 + 3 + 1
    assert result["billed"]["period"] == "2026-10"
    # 49 + (1200-1000) x 0.02 + 1000 x 0.00004 (0.04) + (250-100) x 0.50
    assert result["billed"]["totals"] == {"USD": "128.04"}
    assert not (inbox / "october.jsonl").exists()
    assert list(inbox.glob("processed/*/october.jsonl"))
    # The next run finds an empty inbox and changes nothing.
    second = monthly_billing(period="2026-10", out_dir=str(tmp_path / "out"))
    assert second["ingested"] is None and second["billed"]["unchanged"] == 1


def test_the_preview_flow_stores_nothing(env, issue_catalog, tmp_path):
    from flows.preview import preview_invoice

    apply(env, issue_catalog)
    ingest(env, [write_jsonl(tmp_path / "n.jsonl", [
        {"event_id": f"n{i}", "customer_id": "cus_acme", "event_name": "api.call",
         "timestamp": "2026-11-05T12:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}} for i in range(1100)])])
    docs = preview_invoice(customer="cus_acme")
    assert [(d["period"]["label"], d["invoice_number"], d["total"]) for d in docs] == \
        [("2026-11", None, "51.00")]          # 49 + 100 x 0.02, up to November 10
    with env.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM document")).scalar_one() == 0


def test_a_subscription_that_cannot_be_billed_fails_the_run_not_the_others(env, tmp_path):
    from flows.billing import SubscriptionsNotBilled, bill_cycle
    from tests.conftest import catalog_document, parse_catalog
    from tests.services.test_isolation import legacy_event

    doc = catalog_document()
    doc["customers"] = [{"id": c, "name": c, "email": f"{c}@x.test"} for c in ("cus_a", "cus_b")]
    doc["subscriptions"] = [{"id": f"sub_{c}", "customer": f"cus_{c}", "product": "pro",
                             "start": "2026-01-01"} for c in ("a", "b")]
    apply(env, parse_catalog(doc))
    legacy_event(env, "huge", "cus_b", '{"tokens": 1e400}')
    with pytest.raises(SubscriptionsNotBilled, match=r"1 subscription\(s\) could not be "
                                                      r"billed \(the others were\): sub_b "
                                                      r"\(cus_b\): InvalidOperation"):
        bill_cycle(period="2026-10", out_dir=str(tmp_path / "out"))
    run = list_runs(SqlUnitOfWork(env), CLOCK)[0]
    assert run.status == "partial" and run.invoices_created == 1
    assert run.failures[0]["customer"] == "cus_b"
    assert len(list((tmp_path / "out" / "2026-10" / "drafts").glob("*.pdf"))) == 1
