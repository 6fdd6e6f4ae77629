"""Delivery through a real SMTP server on loopback, on SQLite and PostgreSQL: every issued
document reaches it exactly once, through re-runs, retries and failures; failures are
visible with the server's reasons."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import datetime

import pytest
from sqlalchemy import text

from billing_core.clock import FixedClock
from billing_core.mail.settings import MailSettingError, mail_settings
from billing_core.periods import BillingPeriod
from billing_core.render.batch import render_batch
from billing_core.services.delivery import (
    NothingToDo,
    approve_run,
    list_outbox,
    resend_document,
    retry_message,
    send_outbox,
)
from billing_core.services.documents import void_invoice
from billing_core.services.finalizing import finalize_period
from billing_core.services.rendering import render_documents
from billing_core.services.runs import billing_run
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import ROOT, apply, catalog_document, ingest, parse_catalog, write_jsonl

NOV_10 = FixedClock(datetime(2026, 11, 10, 9, 0))
OCT = BillingPeriod.parse("2026-10")
FAST = (0.05, 0.05)          # backoff for tests: two retries, 50 ms apart


def catalog(**settings):
    doc = catalog_document()
    doc["seller"] = {"name": "Northwind GmbH", "email": "billing@northwind.test",
                     "reply_to": "help@northwind.test", "address": "Hauptstr. 1",
                     "country": "DE", "city": "Berlin", "postal_code": "10115",
                     "tax_id": "DE123456789"}
    doc["customers"] = [
        {"id": "cus_a", "name": "Acme Corp", "email": "billing@acme.test",
         "billing_emails": ["ap@acme.test"], "cc": ["cfo@acme.test"]},
        {"id": "cus_b", "name": "Bistro SARL", "email": "compta@bistro.test",
         "einvoice": "factur-x", "country": "FR", "city": "Paris", "postal_code": "75001",
         "address": "1 rue de Rivoli", "tax_id": "FR12345678901"}]
    doc["subscriptions"] = [{"id": f"sub_{c}", "customer": f"cus_{c}", "product": "pro",
                             "start": "2026-01-01"} for c in "ab"]
    if settings:
        doc["settings"] = settings
    return parse_catalog(doc)


@pytest.fixture
def issued(engine, tmp_path):
    """October finalized (two invoices queued) and rendered."""
    apply(engine, catalog())
    ingest(engine, [write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"{c}{i}", "customer_id": f"cus_{c}", "event_name": "api.call",
         "timestamp": "2026-10-05T00:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}}
        for c in "ab" for i in range(1200)])])
    with billing_run(SqlUnitOfWork(engine), NOV_10, "finalize", "2026-10") as run:
        result = finalize_period(SqlUnitOfWork(engine), NOV_10, OCT, run_id=run.run_id)
    assert result.invoices == ["INV-2026-000001", "INV-2026-000002"] and result.queued == 2
    render_documents(SqlUnitOfWork(engine), NOV_10, tmp_path / "out", render_batch,
                     periods=["2026-10"])
    return engine, run.run_id


def send(engine, url, **options):
    return send_outbox(SqlUnitOfWork(engine), NOV_10, mail_settings({"BILLING_MAIL_URL": url}),
                       backoff=options.pop("backoff", FAST), max_wait=5, **options)


def statuses(engine):
    return {m.reference: m.status for m in list_outbox(SqlUnitOfWork(engine))}


def test_finalizing_queues_one_message_per_document_in_the_same_transaction(issued):
    engine, _ = issued
    messages = list_outbox(SqlUnitOfWork(engine))
    assert [(m.reference, m.status, m.sequence) for m in messages] == \
        [("INV-2026-000001", "queued", 1), ("INV-2026-000002", "queued", 1)]
    acme = messages[0]
    assert acme.recipients["to"] == ["billing@acme.test", "ap@acme.test"]
    assert acme.recipients["cc"] == ["cfo@acme.test"]
    assert acme.message_id.startswith("<INV-2026-000001.1.") and \
        acme.message_id.endswith("@northwind.test>")
    assert acme.subject == "Invoice INV-2026-000001 from Northwind GmbH: $53.00 due " \
                           "December 10, 2026"


def test_every_document_reaches_the_server_exactly_once(issued, smtp, tmp_path):
    engine, _ = issued
    report = send(engine, smtp.url)
    assert report.sent == ["INV-2026-000001", "INV-2026-000002"], report
    assert len(smtp.handler.received) == 2
    acme = smtp.handler.received[0]
    message = acme.message
    assert sorted(acme.recipients) == ["ap@acme.test", "billing@acme.test", "cfo@acme.test"]
    assert acme.sender == "billing@northwind.test"
    assert message["Subject"] == "Invoice INV-2026-000001 from Northwind GmbH: $53.00 due " \
                                 "December 10, 2026"
    assert message["To"] == "billing@acme.test, ap@acme.test" and \
        message["Cc"] == "cfo@acme.test"
    assert message["Reply-To"] == "help@northwind.test"
    outbox = {m.reference: m for m in list_outbox(SqlUnitOfWork(engine))}
    assert message["Message-ID"] == outbox["INV-2026-000001"].message_id
    [pdf] = [p for p in message.iter_attachments() if p.get_filename() ==
             "INV-2026-000001.pdf"]
    stored = (tmp_path / "out" / "2026-10" / "INV-2026-000001.pdf").read_bytes()
    assert pdf.get_content() == stored
    bodies = {p.get_content_type(): p.get_content() for p in message.walk()
              if p.get_content_type() in ("text/plain", "text/html")}
    assert "Amount due: $53.00, by December 10, 2026" in bodies["text/plain"]
    assert "API calls: 1,200 calls ($4.00)" in bodies["text/plain"]
    assert "<strong>$53.00</strong>" in bodies["text/html"]
    # Running again sends nothing more.
    again = send(engine, smtp.url)
    assert again.sent == [] and len(smtp.handler.received) == 2
    assert set(statuses(engine).values()) == {"sent"}


def test_a_refused_recipient_fails_with_the_servers_reason(issued, smtp):
    engine, _ = issued
    smtp.handler.mode = "refuse"
    report = send(engine, smtp.url)
    assert [r for r, _ in report.failed] == ["INV-2026-000001", "INV-2026-000002"]
    failed = list_outbox(SqlUnitOfWork(engine), status="failed")
    assert "550 5.1.1" in failed[0].last_error and "no such user" in failed[0].last_error
    assert smtp.handler.received == []
    # Some recipients refused, others accepted: sent, and the refusal noted.
    smtp.handler.mode = "accept"
    smtp.handler.refused = {"ap@acme.test"}
    retry_message(SqlUnitOfWork(engine), NOV_10, "INV-2026-000001")
    send(engine, smtp.url)
    [acme] = list_outbox(SqlUnitOfWork(engine), reference="INV-2026-000001")
    assert acme.status == "sent" and "ap@acme.test refused: 550" in acme.last_error


def test_temporary_failures_are_retried_with_backoff(issued, smtp):
    engine, _ = issued
    smtp.handler.mode, smtp.handler.failures_left = "tempfail", 1
    slept = []
    report = send(engine, smtp.url, sleep=slept.append)
    assert report.sent == ["INV-2026-000002", "INV-2026-000001"]   # the first one, retried
    assert slept == [pytest.approx(0.05)]
    [acme, _] = list_outbox(SqlUnitOfWork(engine))
    assert acme.attempts == 2
    # A server that keeps failing: the message ends failed after the last retry.
    smtp.handler.failures_left = 10
    resend_document(SqlUnitOfWork(engine), NOV_10, "INV-2026-000001")
    report = send(engine, smtp.url, sleep=lambda s: None)
    [(reference, error)] = report.failed
    assert reference == "INV-2026-000001" and "451 4.3.0" in error
    latest = list_outbox(SqlUnitOfWork(engine), reference="INV-2026-000001")[-1]
    assert latest.status == "failed" and latest.attempts == 3
    assert "gave up after 3 attempts" in latest.last_error


def test_a_server_that_is_down_leaves_the_messages_queued(issued):
    from tests.conftest import free_port

    engine, _ = issued
    report = send(engine, f"smtp://127.0.0.1:{free_port()}?tls=none", backoff=(600.0,))
    assert report.sent == [] and len(report.waiting) == 2
    for message in list_outbox(SqlUnitOfWork(engine)):
        assert message.status == "queued" and "cannot connect" in message.last_error
        assert message.attempts == 1


@pytest.mark.parametrize("mode", ["stall", "drop"])
def test_a_message_whose_fate_is_unknown_is_never_sent_again_blindly(issued, smtp, mode):
    engine, _ = issued
    smtp.handler.mode = mode
    report = send(engine, smtp.url, references=["INV-2026-000001"])
    assert [r for r, _ in report.unknown] == ["INV-2026-000001"]
    assert statuses(engine)["INV-2026-000001"] == "sending"
    smtp.handler.mode = "accept"
    again = send(engine, smtp.url)
    assert again.sent == ["INV-2026-000002"]           # not the one in doubt
    assert [r for r, _ in again.unknown] == ["INV-2026-000001"]
    assert [m.message["Message-ID"] for m in smtp.handler.received].count(
        list_outbox(SqlUnitOfWork(engine))[0].message_id) <= 1
    # The operator decides: send it again.
    retry_message(SqlUnitOfWork(engine), NOV_10, "INV-2026-000001")
    assert send(engine, smtp.url).sent == ["INV-2026-000001"]


@pytest.mark.slow
def test_killed_between_the_servers_acceptance_and_the_commit(issued, smtp):
    """kill -9 right after the server accepted: the message stays `sending`, and re-running
    sends it no second time."""
    engine, _ = issued
    env = {**os.environ, "BILLING_DATABASE_URL": str(engine.url.render_as_string(
        hide_password=False)), "BILLING_MAIL_URL": smtp.url, "BILLING_NOW": "2026-11-10T12:00:00Z",
        "BILLING_FAILPOINT": "send.after_accept:1"}
    killed = subprocess.run([sys.executable, "-m", "billing_cli", "outbox", "send"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert len(smtp.handler.received) == 1
    assert statuses(engine) == {"INV-2026-000001": "sending", "INV-2026-000002": "queued"}
    del env["BILLING_FAILPOINT"]
    again = subprocess.run([sys.executable, "-m", "billing_cli", "outbox", "send"], env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1                       # one message needs a decision
    assert "unknown INV-2026-000001" in again.stderr and "outbox retry" in again.stderr
    assert len(smtp.handler.received) == 2             # only INV-2026-000002 was added
    assert [m.message["Subject"][:15] for m in smtp.handler.received] == \
        ["Invoice INV-202"] * 2
    assert statuses(engine) == {"INV-2026-000001": "sending", "INV-2026-000002": "sent"}


def test_resending_on_purpose_is_a_new_message(issued, smtp):
    engine, _ = issued
    send(engine, smtp.url)
    message = resend_document(SqlUnitOfWork(engine), NOV_10, "INV-2026-000002")
    assert message.sequence == 2 and message.message_id.startswith("<INV-2026-000002.2.")
    send(engine, smtp.url)
    ids = [m.message["Message-ID"] for m in smtp.handler.received]
    assert len(ids) == 3 and len(set(ids)) == 3
    with pytest.raises(NothingToDo, match="was sent on"):
        retry_message(SqlUnitOfWork(engine), NOV_10, "INV-2026-000002")


def test_a_voided_invoices_credit_note_is_sent_too(issued, smtp):
    engine, _ = issued
    send(engine, smtp.url)
    void_invoice(SqlUnitOfWork(engine), NOV_10, "INV-2026-000001", "wrong plan")
    send(engine, smtp.url)      # its files were never written: rendered for the message
    last = smtp.handler.received[-1].message
    assert last["Subject"] == "Credit note CN-2026-000001 from Northwind GmbH for invoice " \
                              "INV-2026-000001: $53.00"
    assert [p.get_filename() for p in last.iter_attachments()] == ["CN-2026-000001.pdf"]


def test_the_file_outbox_writes_eml_files(issued, tmp_path):
    engine, _ = issued
    folder = tmp_path / "eml"
    report = send(engine, f"file://{folder}")
    assert report.sent == ["INV-2026-000001", "INV-2026-000002"]
    assert sorted(p.name for p in folder.iterdir()) == ["INV-2026-000001-1.eml",
                                                        "INV-2026-000002-1.eml"]
    import email
    import email.policy

    parsed = email.message_from_bytes((folder / "INV-2026-000001-1.eml").read_bytes(),
                                      policy=email.policy.default)
    assert parsed["To"] == "billing@acme.test, ap@acme.test"


def test_approval_holds_the_messages_until_released(engine, tmp_path, smtp):
    apply(engine, catalog(require_approval=True))
    with billing_run(SqlUnitOfWork(engine), NOV_10, "finalize", "2026-10") as run:
        finalize_period(SqlUnitOfWork(engine), NOV_10, OCT, run_id=run.run_id)
    assert set(statuses(engine).values()) == {"held"}
    report = send(engine, smtp.url)
    assert report.sent == [] and report.held == 2 and smtp.handler.received == []
    approve_run(SqlUnitOfWork(engine), NOV_10, run.run_id, False, "totals look wrong")
    assert all(m.last_error == "rejected: totals look wrong"
               for m in list_outbox(SqlUnitOfWork(engine)))
    with engine.connect() as conn:
        approval = conn.execute(text("SELECT approval FROM billing_run")).scalar_one()
    approval = json.loads(approval) if isinstance(approval, str) else approval
    assert approval["decision"] == "rejected" and approval["reason"] == "totals look wrong"
    approve_run(SqlUnitOfWork(engine), NOV_10, run.run_id, True, "checked again")
    assert send(engine, smtp.url).sent == ["INV-2026-000001", "INV-2026-000002"]


def test_mail_settings_from_the_environment():
    smtp = mail_settings({"BILLING_MAIL_URL": "smtp://bill%40x.test@mail.x.test:587",
                          "BILLING_SMTP_PASSWORD": "s3cret"})
    assert (smtp.host, smtp.port, smtp.user, smtp.tls, smtp.password) == \
        ("mail.x.test", 587, "bill@x.test", "starttls", "s3cret")
    assert "s3cret" not in repr(smtp) and "s3cret" not in smtp.describe()
    assert mail_settings({"BILLING_SMTP_URL": "smtps://mail.x.test"}).tls == "tls"
    assert mail_settings({}) is None
    for bad, message in [("http://x", "must start with smtp://"), ("file://rel", "absolute"),
                         ("smtp://x?tls=maybe", "tls must be")]:
        with pytest.raises(MailSettingError, match=message):
            mail_settings({"BILLING_MAIL_URL": bad})


def test_the_pdf_sent_is_the_pdf_issued(issued, smtp, tmp_path):
    """If the issued file was tampered with, the message is not sent with it."""
    engine, _ = issued
    pdf = tmp_path / "out" / "2026-10" / "INV-2026-000001.pdf"
    original = hashlib.sha256(pdf.read_bytes()).hexdigest()
    pdf.write_bytes(b"%PDF-1.7 not the invoice")
    send(engine, smtp.url)
    sent = next(p for p in smtp.handler.received[0].message.iter_attachments()
                if p.get_filename().endswith(".pdf")).get_content()
    assert hashlib.sha256(sent).hexdigest() == original   # rendered again from the database
