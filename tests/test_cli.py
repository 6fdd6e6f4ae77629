"""The `billing` command line, through Typer's runner against a real SQLite file."""

import json

import pytest
from typer.testing import CliRunner

from billing_cli.main import app
from tests.conftest import DATA, write_jsonl

runner = CliRunner()


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])
    return invoke


def test_catalog_apply_then_ingest_json_accounting(cli, tmp_path):
    applied = cli("catalog", "apply", DATA / "issue_catalog.yaml")
    assert applied.exit_code == 0, applied.output
    assert "3 meters, 1 products (3 charges), 1 customers, 1 subscriptions" in applied.output
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": "a", "customer_id": "cus_acme", "event_name": "api.call"},
        {"event_id": "a", "customer_id": "cus_acme", "event_name": "api.call"},
        {"event_id": "b", "customer_id": "cus_nope", "event_name": "api.call"}])
    result = cli("ingest", path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"records": 3, "ingested": 1, "duplicates": 1,
                                         "rejected": 1}
    listed = cli("quarantine", "list")
    assert "e.jsonl:line 3: unknown_customer" in listed.output
    assert '"cus_nope"' in listed.output


def test_invalid_catalog_lists_problems_and_applies_nothing(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((DATA / "issue_catalog.yaml").read_text()
                   .replace("meter: tokens,", "meter: tokenz,")
                   .replace("    over_property: tokens", ""))
    result = cli("catalog", "apply", bad)
    assert result.exit_code == 1
    assert "products[0].charges[1].meter: unknown meter 'tokenz'" in result.output
    assert "meters[1].over_property: required for aggregation 'sum'" in result.output
    assert "nothing applied" in result.output
    # validation comes first: the database was not even opened
    assert not (tmp_path / "cli.db").exists()


def test_unreadable_input_exits_non_zero_naming_it(cli, tmp_path):
    cli("catalog", "apply", DATA / "issue_catalog.yaml")
    good = write_jsonl(tmp_path / "ok.jsonl", [
        {"event_id": "a", "customer_id": "cus_acme", "event_name": "api.call"}])
    result = cli("ingest", good, tmp_path / "nope.jsonl")
    assert result.exit_code == 1
    assert "nope.jsonl: no such file or folder" in result.output
    assert "ok.jsonl: 1 records: 1 ingested" in result.output


def test_run_refuses_a_bad_period_and_unknown_customers(cli):
    cli("catalog", "apply", DATA / "issue_catalog.yaml")
    bad = cli("run", "--period", "2026-13")
    assert bad.exit_code == 1 and "period must be YYYY-MM" in bad.output
    unknown = cli("run", "--period", "2026-10", "--customer", "cus_ghost")
    assert unknown.exit_code == 1 and "unknown customer(s): cus_ghost" in unknown.output


def test_run_without_a_catalog_says_so(cli):
    result = cli("run", "--period", "2026-10")
    assert result.exit_code == 1 and "no catalog applied yet" in result.output


def test_db_upgrade(cli):
    result = cli("db", "upgrade")
    assert result.exit_code == 0 and "up to date" in result.output


@pytest.mark.parametrize("url", ["nonsense://", "postgresql+psycopg://u:secret@127.0.0.1:9/x"])
def test_an_unusable_database_url_is_a_clear_error(cli, monkeypatch, url):
    monkeypatch.setenv("BILLING_DATABASE_URL", url)
    result = cli("quarantine", "list")
    assert result.exit_code == 1
    assert "cannot open the database" in result.output and "BILLING_DATABASE_URL" in result.output
    assert "secret" not in result.output


def test_run_refuses_runner_settings_that_cannot_work(cli):
    cli("catalog", "apply", DATA / "issue_catalog.yaml")
    dask = cli("run", "--period", "2026-10", "--runner", "dask")
    assert dask.exit_code == 1 and "needs the scheduler address" in dask.output
    threads = cli("run", "--period", "2026-10", "--runner", "threads")
    assert threads.exit_code == 1 and "not one of in-process, processes, dask" in threads.output


def test_invoice_commands_without_a_flow(cli, tmp_path, monkeypatch):
    """list, show, pay, void, credit, preview, usage and runs call the use cases directly."""
    from billing_core.clock import FixedClock
    from billing_core.db.engine import get_engine
    from billing_core.periods import BillingPeriod
    from billing_core.services.finalizing import finalize_period
    from billing_core.services.unit_of_work import SqlUnitOfWork

    monkeypatch.setenv("BILLING_NOW", "2026-11-10T09:00:00Z")
    cli("catalog", "apply", DATA / "issue_catalog.yaml")
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"e{i}", "customer_id": "cus_acme", "event_name": "api.call",
         "timestamp": "2026-10-05T00:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}} for i in range(1200)])
    assert cli("ingest", path).exit_code == 0
    engine = get_engine()
    finalize_period(SqlUnitOfWork(engine), FixedClock(__import__("datetime").datetime(
        2026, 11, 10)), BillingPeriod.parse("2026-10"))

    listed = cli("invoices", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["reference"], r["status"], r["total"]) for r in rows] == \
        [("INV-2026-000001", "finalized", "53.00")]          # 49 + 200 x 0.02
    shown = cli("invoices", "show", "INV-2026-000001")
    assert "API calls" in shown.output and "$53.00" in shown.output
    paid = cli("invoices", "pay", "INV-2026-000001", "--date", "2026-11-12",
               "--reference", "wire 7")
    assert paid.exit_code == 0 and "paid on 2026-11-12" in paid.output
    refused = cli("invoices", "void", "INV-2026-000001", "--reason", "oops")
    assert refused.exit_code == 1 and "paid and cannot be voided" in refused.output
    credited = cli("invoices", "credit", "INV-2026-000001", "--reason", "goodwill",
                   "--line", "2", "--out", tmp_path / "docs")
    assert credited.exit_code == 0, credited.output
    assert "credit note CN-2026-000001 issued" in credited.output
    assert (tmp_path / "docs" / "2026-10" / "CN-2026-000001.pdf").exists()
    missing = cli("invoices", "show", "INV-2099-000001")
    assert missing.exit_code == 1 and "no invoice, credit note or draft" in missing.output
    preview = cli("preview", "--customer", "cus_acme", "--json")
    assert preview.exit_code == 0 and json.loads(preview.stdout)[0]["period"]["label"] == \
        "2026-11"
    usage = cli("usage", "--customer", "cus_acme", "--from", "2026-10-01", "--to",
                "2026-11-01", "--meter", "api_calls", "--json")
    assert json.loads(usage.stdout)[0]["quantity"] == "1200"
    bad = cli("usage", "--customer", "cus_acme", "--from", "2026-10-05", "--to", "2026-10-01")
    assert bad.exit_code == 1 and "must be after" in bad.output
    assert "Traceback" not in bad.output


def test_finalize_refuses_a_month_in_grace_without_starting_a_flow(cli, monkeypatch):
    monkeypatch.setenv("BILLING_NOW", "2026-11-02T09:00:00Z")
    cli("catalog", "apply", DATA / "issue_catalog.yaml")
    result = cli("invoices", "finalize", "--period", "2026-10")
    assert result.exit_code == 1
    assert "inside its grace period" in result.output and "--force" in result.output


def test_credits_grant_balance_ledger_void_and_alerts(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_NOW", "2026-11-10T09:00:00Z")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text((DATA / "issue_catalog.yaml").read_text() + (
        "alerts:\n"
        "  - {id: many_calls, kind: usage, meter: api_calls, threshold: 2}\n"))
    assert cli("catalog", "apply", catalog).exit_code == 0
    granted = cli("credits", "grant", "--customer", "cus_acme", "--amount", "500.00",
                  "--currency", "usd", "--priority", "10", "--expires", "2027-06-30",
                  "--applies-to", "api_calls,base_fee", "--reason", "Prepaid pack",
                  "--reference", "PO-7")
    assert granted.exit_code == 0, granted.output
    assert "credit grant #1 granted: 500.00 USD to cus_acme (priority 10, expires after " \
           "2027-06-30)" in granted.output
    again = cli("credits", "grant", "--customer", "cus_acme", "--amount", "500.00",
                "--currency", "USD", "--priority", "10", "--expires", "2027-06-30",
                "--applies-to", "api_calls,base_fee", "--reference", "PO-7")
    assert "was already granted under this reference" in again.output
    for bad, message in [(("--amount", "5e2"), "--amount must be a positive decimal"),
                         (("--amount", "1.001"), "has 2 decimal places"),
                         (("--amount", "-1"), "--amount must be a positive decimal"),
                         (("--customer", "cus_nope"), "unknown customer 'cus_nope'"),
                         (("--applies-to", "nope"), "unknown meter 'nope'"),
                         (("--expires", "2026-13-01"), "--expires must be a date"),
                         (("--priority", "101"), "priority must be from 0 to 100")]:
        args = {"--customer": "cus_acme", "--amount": "1.00", "--currency": "USD"}
        extra = dict(zip(bad[::2], bad[1::2], strict=True))
        merged = {**args, **extra}
        result = cli("credits", "grant", *[x for kv in merged.items() for x in kv])
        assert result.exit_code == 1, (bad, result.output)
        assert message in result.output, (bad, result.output)
        assert "Traceback" not in result.output
    balance = cli("credits", "balance", "--customer", "cus_acme", "--json")
    assert balance.exit_code == 0, balance.output
    (row,) = json.loads(balance.stdout)
    assert (row["balance"], row["status"], row["applies_to"], row["starts"]) == \
        ("500.00", "active", ["api_calls", "base_fee"], None)
    assert "available: 500.00 USD" in cli("credits", "balance", "--customer",
                                          "cus_acme").output
    earlier = json.loads(cli("credits", "balance", "--customer", "cus_acme", "--as-of",
                             "2026-11-09", "--json").stdout)
    assert earlier == []
    voided = cli("credits", "void", "1", "--reason", "refunded")
    assert voided.exit_code == 0 and "500.00 taken away" in voided.output
    ledger = json.loads(cli("credits", "ledger", "--customer", "cus_acme", "--json").stdout)
    assert [(e["kind"], e["amount"]) for e in ledger] == [("grant", "500.00"),
                                                          ("void", "-500.00")]
    assert "Credit ledger of cus_acme" in cli("credits", "ledger", "--customer",
                                              "cus_acme").output
    # alerts fire after ingest and are listed
    events = write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"e{i}", "customer_id": "cus_acme", "event_name": "api.call",
         "timestamp": "2026-11-05T10:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}} for i in range(3)])
    ingested = cli("ingest", events)
    assert "alert: cus_acme: many_calls: API calls reached 3 calls in 2026-11" in \
        ingested.output
    listed = json.loads(cli("alerts", "list", "--json").stdout)
    assert [(a["rule"], a["value"], a["period"]) for a in listed] == [("many_calls", "3",
                                                                       "2026-11")]
    assert "0 alert(s) fired" in cli("alerts", "check").output
