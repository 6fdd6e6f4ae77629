"""Usage, spend and balance alerts on SQLite and PostgreSQL: evaluated after each ingest,
fired once per cycle, recorded, e-mailed through a real SMTP server on loopback and
posted to a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from billing_core.catalog import parse_catalog
from billing_core.clock import FixedClock
from billing_core.mail.settings import mail_settings
from billing_core.mail.webhook import signature
from billing_core.services.alerts import evaluate_alerts, list_alerts
from billing_core.services.credits import grant_credit
from billing_core.services.delivery import list_outbox, send_outbox
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import apply, ingest, write_jsonl
from tests.delivery.smtp_server import SmtpServer

NOV_10 = FixedClock(datetime(2026, 11, 10, 9))
NOV_20 = FixedClock(datetime(2026, 11, 20, 9))
DEC_10 = FixedClock(datetime(2026, 12, 10, 9))


class Hooks:
    """A loopback HTTP server that records POSTs and answers with `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.received.append((dict(self.headers), body))
                self.send_response(hooks.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/billing"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    server = Hooks()
    yield server
    server.close()


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def catalog(webhook: str | None = None, **rule_changes: Any):
    rules: list[dict[str, Any]] = [
        {"id": "calls_1k", "kind": "usage", "meter": "api_calls", "threshold": 1000,
         "name": "API calls"},
        {"id": "spend_50", "kind": "spend", "threshold": "50.00", "currency": "USD"},
        {"id": "low_credit", "kind": "balance", "threshold": "20.00"},
    ]
    if webhook:
        for rule in rules:
            rule["webhook"] = webhook
    rules[0].update(rule_changes)
    return parse_catalog({
        "currency": "USD",
        "seller": {"name": "Seller Inc", "email": "billing@seller.test", "country": "US"},
        "meters": [{"key": "api_calls", "name": "API calls", "event_name": "api.call",
                    "aggregation": "count"}],
        "products": [{"key": "pro", "name": "Pro", "charges": [
            {"meter": "api_calls", "price_per_unit": "0.05"}]}],
        "customers": [
            {"id": "cus_a", "name": "A Inc", "email": "a@a.test", "country": "US",
             "billing_emails": ["ap@a.test"]},
            {"id": "cus_b", "name": "B Inc", "email": "b@b.test", "country": "US"}],
        "subscriptions": [
            {"id": "sub_a", "customer": "cus_a", "product": "pro", "start": "2026-01-01"},
            {"id": "sub_b", "customer": "cus_b", "product": "pro", "start": "2026-01-01"}],
        "alerts": rules})


def calls(engine, tmp_path, customer: str, n: int, day: str = "2026-11-05",
          clock=NOV_10):
    name = f"{customer}-{len(list(tmp_path.iterdir()))}"
    return ingest(engine, [write_jsonl(tmp_path / f"{name}.jsonl", [
        {"event_id": f"{name}-{i}", "customer_id": customer, "event_name": "api.call",
         "timestamp": f"{day}T10:00:00Z"} for i in range(n)])], clock)


def fired(engine) -> list[tuple[str, str, str, str]]:
    return sorted((a.rule_id, a.customer_id, a.subject, a.period)
                  for a in list_alerts(SqlUnitOfWork(engine)))


def test_usage_and_spend_alerts_fire_once_per_cycle_after_ingest(engine, tmp_path):
    apply(engine, catalog())
    assert calls(engine, tmp_path, "cus_a", 600).alerts == []
    report = calls(engine, tmp_path, "cus_a", 500)      # 1,100 calls: 55.00
    assert sorted(a.rule_id for a in report.alerts) == ["calls_1k", "spend_50"]
    usage_alert = next(a for a in report.alerts if a.rule_id == "calls_1k")
    assert (usage_alert.value, usage_alert.period) == (Decimal(1100), "2026-11")
    assert "reached 1100" in usage_alert.message
    assert calls(engine, tmp_path, "cus_a", 900).alerts == []       # once per cycle
    assert calls(engine, tmp_path, "cus_b", 10).alerts == []         # below, other customer
    assert fired(engine) == [("calls_1k", "cus_a", "api_calls", "2026-11"),
                             ("spend_50", "cus_a", "USD", "2026-11")]
    # the next cycle starts afresh
    report = calls(engine, tmp_path, "cus_a", 1000, day="2026-12-02",
                   clock=FixedClock(datetime(2026, 12, 3, 9)))
    assert sorted((a.rule_id, a.period) for a in report.alerts) == [
        ("calls_1k", "2026-12"), ("spend_50", "2026-12")]
    # one e-mail per alert to the customer's billing addresses, queued
    messages = [m for m in list_outbox(SqlUnitOfWork(engine)) if m.kind == "alert"]
    assert len(messages) == 4
    assert messages[0].recipients["to"] == ["a@a.test", "ap@a.test"]


def test_usage_in_the_grace_period_of_the_cycle_before_counts_for_it(engine, tmp_path):
    apply(engine, catalog())
    report = calls(engine, tmp_path, "cus_a", 1000, day="2026-10-30",
                   clock=FixedClock(datetime(2026, 11, 1, 9)))
    assert [(a.rule_id, a.period) for a in report.alerts if a.rule_id == "calls_1k"] == \
        [("calls_1k", "2026-10")]


def test_balance_alert_counts_what_the_open_cycle_would_take(engine, tmp_path):
    apply(engine, catalog())
    grant_credit(SqlUnitOfWork(engine), NOV_10, "cus_a", Decimal("60.00"), "USD",
                 reason="prepaid")
    assert [a.rule_id for a in calls(engine, tmp_path, "cus_a", 500).alerts] == []  # 35 left
    report = calls(engine, tmp_path, "cus_a", 400)     # 45.00 to date: 15.00 would be left
    balance = [a for a in report.alerts if a.rule_id == "low_credit"]
    assert len(balance) == 1
    assert balance[0].value == Decimal("15.00")
    assert balance[0].subject.startswith("grant:")
    assert "15.00 USD left" in balance[0].message


def test_rules_limited_to_customers_and_email_off(engine, tmp_path):
    apply(engine, catalog(customers=["cus_b"], email=False))
    assert calls(engine, tmp_path, "cus_a", 1100).alerts[0].rule_id == "spend_50"
    report = calls(engine, tmp_path, "cus_b", 1000)      # 50.00: both
    assert sorted(a.rule_id for a in report.alerts) == ["calls_1k", "spend_50"]
    # the usage rule does not e-mail
    mailed = {f"ALERT-{a.id}" for a in list_alerts(SqlUnitOfWork(engine))
              if a.rule_id == "spend_50"}
    assert {m.reference for m in list_outbox(SqlUnitOfWork(engine))} == mailed


def test_evaluating_again_or_twice_at_once_records_each_alert_once(engine, tmp_path):
    apply(engine, catalog())
    calls(engine, tmp_path, "cus_a", 1100)
    assert evaluate_alerts(SqlUnitOfWork(engine), NOV_20) == []
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(
        evaluate_alerts(SqlUnitOfWork(engine), NOV_20))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[], []]
    assert len(fired(engine)) == 2
    assert len(list_outbox(SqlUnitOfWork(engine))) == 2


def test_alerts_are_mailed_and_posted_to_the_webhook(engine, tmp_path, smtp, hooks,
                                                     monkeypatch):
    monkeypatch.setenv("BILLING_WEBHOOK_SECRET", "s3cret")
    apply(engine, catalog(webhook=hooks.url))
    calls(engine, tmp_path, "cus_a", 1100)
    settings = mail_settings({"BILLING_MAIL_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none"})
    report = send_outbox(SqlUnitOfWork(engine), NOV_10, settings)
    assert sorted(report.sent) == ["ALERT-1", "ALERT-1-webhook", "ALERT-2",
                                   "ALERT-2-webhook"]
    mails = sorted(smtp.handler.received, key=lambda r: r.message["Subject"])
    assert [m.recipients for m in mails] == [["a@a.test", "ap@a.test"]] * 2
    assert "API calls reached 1100" in mails[0].message["Subject"]
    body = mails[0].message.get_content()
    assert "Hello A Inc," in body and "November 2026" in body
    assert len(hooks.received) == 2
    headers, raw = hooks.received[0]
    payload = json.loads(raw)
    assert payload["type"] == "billing.alert"
    assert payload["alert"]["customer"] == "cus_a"
    assert headers["X-Billflow-Signature"] == signature(raw, "s3cret")
    assert headers["X-Billflow-Delivery"].startswith("alert-")
    # sending again sends nothing more
    again = send_outbox(SqlUnitOfWork(engine), NOV_10, settings)
    assert again.sent == [] and len(hooks.received) == 2


def test_a_failing_webhook_is_retried_and_a_refusing_one_fails(engine, tmp_path, smtp, hooks):
    apply(engine, catalog(webhook=hooks.url))
    calls(engine, tmp_path, "cus_a", 1100)
    settings = mail_settings({"BILLING_MAIL_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none"})
    hooks.status = 503
    report = send_outbox(SqlUnitOfWork(engine), NOV_10, settings, max_wait=0)
    assert sorted(r for r, _ in report.waiting) == ["ALERT-1-webhook", "ALERT-2-webhook"]
    deliveries = {h["X-Billflow-Delivery"] for h, _ in hooks.received}
    hooks.status = 204
    later = FixedClock(datetime(2026, 11, 10, 9, 5))
    report = send_outbox(SqlUnitOfWork(engine), later, settings, max_wait=0)
    assert sorted(report.sent) == ["ALERT-1-webhook", "ALERT-2-webhook"]
    # the retry carries the same delivery id: the receiver can drop a repeat
    assert {h["X-Billflow-Delivery"] for h, _ in hooks.received[2:]} == deliveries
    hooks.status = 410
    new = calls(engine, tmp_path, "cus_b", 1100).alerts
    report = send_outbox(SqlUnitOfWork(engine), later, settings, max_wait=0)
    assert sorted(r for r, _ in report.failed) == sorted(f"ALERT-{a.id}-webhook" for a in new)
    assert "410" in report.failed[0][1]


def test_an_alert_rule_is_checked_in_the_catalog():
    with pytest.raises(ValueError, match="meter"):
        catalog(meter=None)
    with pytest.raises(ValueError, match="webhook"):
        catalog(webhook="ftp://x")


def test_no_rules_means_no_work(engine, tmp_path):
    doc = catalog()
    apply(engine, doc.model_copy(update={"alerts": ()}))
    assert calls(engine, tmp_path, "cus_a", 2000).alerts == []
    assert date(2026, 11, 10) == NOV_10.today()
