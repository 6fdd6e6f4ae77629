"""Real Prefect flow runs (ephemeral server): billing, history, artifacts, the monthly run."""

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from billing_core.catalog_store import apply_catalog
from billing_core.runs import list_runs
from tests.conftest import write_jsonl

pytestmark = pytest.mark.flow


@pytest.fixture
def env(db_url, engine, monkeypatch, tmp_path):
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    monkeypatch.setenv("BILLING_INBOX", str(tmp_path / "inbox"))
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


def test_bill_cycle_flow_end_to_end(env, issue_catalog, tmp_path):
    from prefect.client.orchestration import get_client

    from billing_core.ingest.service import ingest_paths
    from flows.billing import bill_cycle

    apply_catalog(env, issue_catalog)
    ingest_paths(env, [write_jsonl(tmp_path / "e.jsonl", events())])
    out = tmp_path / "invoices"
    result = bill_cycle(period="2026-10", out_dir=str(out))
    assert result["invoices"] == 1 and result["created"] == 1, result
    # 49 + (2500-1000) x 0.02 + 1610612736 x 0.00004 + (250-100) x 0.50
    assert result["total"] == "64578.51"
    number = result["invoice_numbers"][0]
    pdf = (out / "2026-10" / f"{number}.pdf").read_bytes()
    text_ = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "$64,578.51" in text_ and "$30.00" in text_ and "$75.00" in text_
    assert json.loads((out / "2026-10" / f"{number}.json").read_text())["total"] == "64578.51"

    run = list_runs(env)[0]
    assert (run.status, run.period, run.invoices_created) == ("completed", "2026-10", 1)
    assert run.flow_run_id and run.ended_at and str(run.total) == "64578.51"
    assert run.skipped == {"tokens": {"missing_property": 0, "not_a_number": 1}}

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run.flow_run_id)
        assert flow_run.state.is_completed()
        artifact = client.read_latest_artifacts()
        table = [a for a in artifact if a.key == "usage-2026-10"]
        assert table, [a.key for a in artifact]
        rows = json.loads(table[0].data) if isinstance(table[0].data, str) else table[0].data
        calls = next(r for r in rows if r["meter"] == "api_calls")
        assert (calls["consumed"], calls["free"], calls["billable"], calls["amount"]) == \
            ("2500", "1000", "1500", "30.00")

    # Re-running bills nothing twice: same invoice, unchanged, a second run in the history.
    again = bill_cycle(period="2026-10", out_dir=str(out))
    assert (again["invoice_numbers"], again["unchanged"], again["created"]) == ([number], 1, 0)
    with env.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM invoice")).scalar_one() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM billing_run")).scalar_one() == 2


def test_bad_period_is_refused_by_the_flow_parameters(env):
    from flows.billing import bill_cycle

    with pytest.raises(Exception, match="pattern"):
        bill_cycle(period="2026-13")


def test_a_failed_run_is_recorded(env, monkeypatch):
    from flows.billing import bill_cycle

    with pytest.raises(Exception, match="no catalog applied"):
        bill_cycle(period="2026-10")
    run = list_runs(env)[0]
    assert run.status == "failed" and "no catalog applied" in run.error


def test_monthly_billing_ingests_the_inbox_and_bills_the_month(env, issue_catalog, tmp_path):
    from flows.monthly import monthly_billing

    apply_catalog(env, issue_catalog)
    inbox = Path(tmp_path / "inbox")
    inbox.mkdir()
    write_jsonl(inbox / "october.jsonl", events(n_calls=1200, tokens=(1000,)))
    result = monthly_billing(period="2026-10", out_dir=str(tmp_path / "out"))
    assert result["ingested"]["ingested"] == 1200 + 1 + 3 + 1
    # 49 + (1200-1000) x 0.02 + 1000 x 0.00004 (0.04) + (250-100) x 0.50
    assert result["billed"]["total"] == "128.04"
    assert not (inbox / "october.jsonl").exists()
    assert list(inbox.glob("processed/*/october.jsonl"))
    # The next run finds an empty inbox and changes nothing.
    second = monthly_billing(period="2026-10", out_dir=str(tmp_path / "out"))
    assert second["ingested"] is None and second["billed"]["unchanged"] == 1
