"""Sending from the flows: send-invoices, the finalize flow sending what it issued, and the
approval pause resumed through a real Prefect server's API (as the UI does)."""

import json
import os
import subprocess
import sys
import time

import pytest

from billing_core.services.delivery import list_outbox
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import ROOT, apply, ingest, write_jsonl
from tests.delivery.test_delivery import catalog

pytestmark = pytest.mark.flow


def usage(engine, tmp_path):
    ingest(engine, [write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"{c}{i}", "customer_id": f"cus_{c}", "event_name": "api.call",
         "timestamp": "2026-10-05T00:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}}
        for c in "ab" for i in range(1100)])])


@pytest.fixture
def env(db_url, engine, monkeypatch):
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    monkeypatch.setenv("BILLING_NOW", "2026-11-10T09:00:00Z")
    return engine


def test_the_finalize_flow_sends_what_it_issued(env, tmp_path, smtp, monkeypatch):
    from flows.delivery import send_invoices
    from flows.finalize import finalize_invoices

    apply(env, catalog())
    usage(env, tmp_path)
    monkeypatch.setenv("BILLING_MAIL_URL", smtp.url)
    result = finalize_invoices(period="2026-10", out_dir=str(tmp_path / "out"))
    assert result["queued"] == 2 and result["delivery"]["sent"] == 2
    assert len(smtp.handler.received) == 2
    assert send_invoices() == {"sent": 0, "failed": 0, "waiting": 0, "unknown": 0, "held": 0}
    assert len(smtp.handler.received) == 2


def test_send_invoices_needs_delivery_configured(env, monkeypatch):
    from flows.delivery import send_invoices

    monkeypatch.delenv("BILLING_MAIL_URL", raising=False)
    monkeypatch.delenv("BILLING_SMTP_URL", raising=False)
    with pytest.raises(RuntimeError, match="no delivery configured: set BILLING_MAIL_URL"):
        send_invoices()


@pytest.mark.slow
def test_approval_pauses_the_flow_until_the_operator_decides(env, db_url, tmp_path, smtp,
                                                             prefect_server):
    apply(env, catalog(require_approval=True, approval_flag_above="50"))
    usage(env, tmp_path)
    run_env = {**os.environ, **{k: v for k, v in prefect_server.items() if k != "log"},
               "BILLING_DATABASE_URL": db_url, "BILLING_MAIL_URL": smtp.url,
               "BILLING_NOW": "2026-11-10T09:00:00Z"}
    flow = subprocess.Popen(
        [sys.executable, "-c", "import json; from flows.finalize import finalize_invoices; "
         f"print(json.dumps(finalize_invoices(period='2026-10', out_dir={str(tmp_path)!r})))"],
        cwd=ROOT, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        decide(prefect_server, env, smtp, flow)
    except BaseException:
        flow.kill()   # never leave a paused flow behind
        raise
    out, err = flow.communicate(timeout=180)
    assert flow.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["delivery"]["approved"] is True and result["delivery"]["sent"] == 2
    assert len(smtp.handler.received) == 2


def decide(prefect_server, env, smtp, flow):
    """Wait for the flow run to pause, check what the operator sees, approve."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}), \
            get_client(sync_client=True) as client:
        deadline = time.monotonic() + 120
        paused = []
        while not paused and time.monotonic() < deadline and flow.poll() is None:
            paused = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            time.sleep(0.5)
        assert paused, flow.communicate()[1][-3000:]
        # Nothing is sent while the flow waits; the summary is published for the operator.
        assert smtp.handler.received == []
        assert {m.status for m in list_outbox(SqlUnitOfWork(env))} == {"held"}
        summary = next(a for a in client.read_latest_artifacts() if a.key == "approval-2026-10")
        assert "Send 2 document(s) for 2026-10?" in summary.data
        assert "Invoices above 50:** 2" in summary.data   # 49 + 100 x 0.02 each
        resume_flow_run(paused[0].id, run_input={"approve": True, "reason": "checked"})
