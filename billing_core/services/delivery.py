"""Use cases: queue documents' e-mails, send them at most once, retry, resend, approve.

The guarantee: a message is marked `sending` (committed) just before it is handed to the
mail server and `sent` (committed) as soon as the server accepts it. So:
- re-running after a crash never sends a message again once its `sent` state was
  recorded;
- a message caught between the server's acceptance and that commit (or whose final reply
  never came) stays `sending`: it is reported for an operator to decide (`billing outbox
  retry NUMBER` sends it again), never re-sent blindly.
Transient failures (connection refused or reset, 4xx replies) are retried with backoff;
permanent ones (5xx replies, every recipient refused) end `failed` with the server's words.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from billing_core.catalog.models import Catalog
from billing_core.clock import Clock
from billing_core.db import locks
from billing_core.db.models import DocumentRow, OutboxRow
from billing_core.documents.model import Document, from_json
from billing_core.errors import describe
from billing_core.failpoints import failpoint
from billing_core.mail import webhook
from billing_core.mail.message import (
    build_alert_message,
    build_message,
    message_id,
    subject,
)
from billing_core.mail.settings import MailSettings
from billing_core.mail.transport import (
    FileTransport,
    PermanentFailure,
    SmtpTransport,
    TransientFailure,
    UnknownOutcome,
    transport_for,
)
from billing_core.render.batch import process_renderer
from billing_core.render.files import document_files
from billing_core.services.catalog import current_catalog
from billing_core.services.unit_of_work import SqlUnitOfWork

BACKOFF = (2.0, 10.0, 30.0, 120.0, 600.0, 3600.0)   # seconds before attempts 2, 3, ...
LOCK = "delivery"


class DeliveryBusy(RuntimeError):
    """Another process is sending the outbox."""


class NothingToDo(ValueError):
    """The message asked for cannot be retried or resent as asked."""


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)    # queued for a retry
    unknown: list[tuple[str, str]] = field(default_factory=list)    # left `sending`
    held: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"sent": len(self.sent), "failed": len(self.failed),
                "waiting": len(self.waiting), "unknown": len(self.unknown),
                "held": self.held}


@dataclass(frozen=True)
class Issued:
    """An issued document, as the outbox needs it."""

    id: int
    number: str
    customer_id: str
    document_hash: str
    document: Document


def queue_documents(uow: SqlUnitOfWork, catalog: Catalog, rows: Sequence[DocumentRow],
                    now: datetime, run_id: int | None = None, held: bool = False) -> int:
    """Queue one message per issued document, inside the caller's transaction (the one
    that issues them). Nothing when the catalog says `send_documents: false`."""
    if not catalog.settings.send_documents:
        return 0
    issued = []
    for row in rows:
        assert row.id is not None and row.number is not None
        issued.append(Issued(row.id, row.number, row.customer_id, row.document_hash,
                             from_json(json.loads(row.content))))
    return queue_issued(uow, catalog, issued, now, run_id, held)


def queue_issued(uow: SqlUnitOfWork, catalog: Catalog, issued: Sequence[Issued],
                 now: datetime, run_id: int | None = None, held: bool = False) -> int:
    """`queue_documents` for documents at hand (one batch of inserts)."""
    if not catalog.settings.send_documents or not issued:
        return 0
    seller = catalog.seller
    customers = {c.id: c for c in catalog.customers}
    last = uow.outbox.last_sequences(item.id for item in issued)
    messages = []
    for item in issued:
        doc = item.document
        customer = customers.get(item.customer_id)
        to = list(customer.recipients()) if customer else [doc.customer.email]
        cc = [a for a in (customer.cc if customer else ()) if a not in to]
        sequence = last.get(item.id, 0) + 1
        last[item.id] = sequence
        messages.append({
            "kind": "document", "document_id": item.id, "reference": item.number,
            "sequence": sequence, "sender": seller.email, "reply_to": seller.reply_to or None,
            "recipients": {"to": to, "cc": cc, "sender_name": seller.name},
            "subject": subject(doc),
            "message_id": message_id(item.number, sequence, item.document_hash,
                                     seller.email),
            "status": "held" if held else "queued", "attempts": 0,
            "last_error": "waiting for approval" if held else None,
            "next_attempt_at": now, "created_at": now, "updated_at": now,
            "billing_run_id": run_id})
    uow.outbox.add_many(messages)
    return len(messages)


def _document_bytes(row: DocumentRow) -> tuple[bytes, bytes | None]:
    """The issued PDF (and XML): read from where they were written, checked against the
    recorded hashes; rendered again (the same bytes) when the files are gone."""
    recorded = row.file_hashes or {}
    if row.files_dir and row.number:
        files = {}
        for kind in ("pdf", "xml"):
            path = Path(row.files_dir) / f"{row.number}.{kind}"
            if path.is_file():
                files[kind] = path.read_bytes()
        if "pdf" in files and all(hashlib.sha256(files[k]).hexdigest() == recorded.get(k)
                                  for k in files) and ("xml" in files) == ("xml" in recorded):
            return files["pdf"], files.get("xml")
    rendered = document_files(row.content, process_renderer())
    for kind in ("pdf", "xml"):
        if kind in recorded and kind in rendered and \
                hashlib.sha256(rendered[kind]).hexdigest() != recorded[kind]:
            raise PermanentFailure(f"the {kind.upper()} rendered again differs from the issued "
                                   f"one (templates changed) and the issued file is gone")
    return rendered["pdf"], rendered.get("xml")


def _build(uow: SqlUnitOfWork, message: OutboxRow, when: datetime) -> tuple[Any, list[str]]:
    if not message.sender:
        raise PermanentFailure("no sender address: set seller.email in the catalog")
    to, cc = list(message.recipients["to"]), list(message.recipients.get("cc", []))
    if message.kind == "alert":
        return build_alert_message(
            (message.payload or {}).get("alert", {}),
            locale=message.recipients.get("locale", "en"),
            customer_name=message.recipients.get("customer_name", ""),
            sender_name=message.recipients.get("sender_name", ""), sender=message.sender,
            reply_to=message.reply_to, to=to, cc=cc, subject_line=message.subject,
            message_id_value=message.message_id, when=when.replace(tzinfo=UTC)), to + cc
    with uow.read():
        row = uow.documents.get(message.document_id or 0)
    if row is None:
        raise PermanentFailure("its document no longer exists")
    doc: Document = from_json(json.loads(row.content))
    pdf, xml = _document_bytes(row)
    built = build_message(doc, sender_name=message.recipients.get("sender_name", ""),
                          sender=message.sender, reply_to=message.reply_to, to=to, cc=cc,
                          subject_line=message.subject, message_id_value=message.message_id,
                          pdf=pdf, xml=xml, when=when.replace(tzinfo=UTC))
    return built, to + cc


def send_outbox(uow: SqlUnitOfWork, clock: Clock, settings: MailSettings, *,
                references: Sequence[str] | None = None, backoff: Sequence[float] = BACKOFF,
                max_wait: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                transport: SmtpTransport | FileTransport | None = None) -> DeliveryReport:
    """Send every queued message that is due (or only those of `references`), retrying
    transient failures whose next attempt comes within `max_wait` seconds."""
    report = DeliveryReport()
    try:
        lock = locks.exclusive(uow.engine, LOCK)
        lock.__enter__()
    except locks.LockBusy:
        raise DeliveryBusy("another process is sending the outbox; wait for it to finish "
                           "(`billing outbox list`)") from None
    try:
        with uow.read():
            for stuck in uow.outbox.listing(status="sending"):
                report.unknown.append((stuck.reference, stuck.last_error or
                                       "the sending process stopped before it recorded "
                                       "the outcome; it may have been delivered"))
            report.held = len(uow.outbox.listing(status="held"))
        not_before: datetime | None = None   # after waiting for a retry: at least that time
        while True:
            now = max(clock.now(), not_before) if not_before else clock.now()
            with uow.read():
                due = uow.outbox.due(now, references)
                upcoming = uow.outbox.next_due(references) if not due else None
            if not due:
                if upcoming is None:
                    break
                wait = (upcoming - now).total_seconds()
                if wait > max_wait:
                    break
                sleep(max(wait, 0.0))
                not_before = upcoming
                continue
            mail = transport or transport_for(settings)
            try:
                for message in due:
                    _send_one(uow, now, clock, mail, message, backoff, report)
            finally:
                if transport is None:
                    mail.close()
        report.waiting = []
        with uow.read():
            for waiting in uow.outbox.listing(status="queued"):
                if references is None or waiting.reference in references:
                    report.waiting.append((waiting.reference, waiting.last_error or ""))
    finally:
        lock.__exit__(None, None, None)
    return report


def _send_one(uow: SqlUnitOfWork, now: datetime, clock: Clock,
              mail: SmtpTransport | FileTransport, message: OutboxRow,
              backoff: Sequence[float], report: DeliveryReport) -> None:
    assert message.id is not None
    with uow:
        if not uow.outbox.claim(message.id, now):
            return
        uow.commit()
    attempts = message.attempts + 1
    try:
        if message.kind == "webhook":
            note = webhook.post(message.recipients["url"], message.payload or {},
                                message.message_id)
        else:
            built, recipients = _build(uow, message, now)
            note = mail.send(built, message.sender, recipients,
                             name=f"{message.reference}-{message.sequence}")
    except TransientFailure as exc:
        if attempts > len(backoff):
            _finish(uow, message.id, clock, status="failed",
                    last_error=f"gave up after {attempts} attempts: {exc}")
            report.failed.append((message.reference, str(exc)))
        else:
            _finish(uow, message.id, clock, status="queued", last_error=str(exc),
                    next_attempt_at=now + timedelta(seconds=backoff[attempts - 1]))
        return
    except PermanentFailure as exc:
        _finish(uow, message.id, clock, status="failed", last_error=str(exc))
        report.failed.append((message.reference, str(exc)))
        return
    except UnknownOutcome as exc:
        _finish(uow, message.id, clock, status="sending", last_error=str(exc))
        report.unknown.append((message.reference, str(exc)))
        return
    except Exception as exc:  # building the message failed: say so, send nothing
        _finish(uow, message.id, clock, status="failed",
                last_error=f"cannot build the message: {describe(exc)}")
        report.failed.append((message.reference, describe(exc)))
        return
    failpoint("send.after_accept")
    _finish(uow, message.id, clock, status="sent", sent_at=clock.now(),
            last_error=note or None)
    report.sent.append(message.reference)


def _finish(uow: SqlUnitOfWork, message_id_: int, clock: Clock, **values: Any) -> None:
    with uow:
        uow.outbox.change(message_id_, updated_at=clock.now(), **values)
        uow.commit()


def list_outbox(uow: SqlUnitOfWork, status: str | None = None,
                reference: str | None = None) -> list[OutboxRow]:
    with uow.read():
        return uow.outbox.listing(status, reference)


def retry_message(uow: SqlUnitOfWork, clock: Clock, reference: str) -> OutboxRow:
    """Queue again, on purpose, the latest message of a document that failed, is held, or
    whose fate is unknown (`sending`)."""
    with uow:
        messages = uow.outbox.for_reference(reference)
        if not messages:
            raise NothingToDo(f"no message of {reference!r} in the outbox")
        latest = messages[-1]
        if latest.status == "sent":
            raise NothingToDo(f"{reference} was sent on {latest.sent_at:%Y-%m-%d %H:%M} UTC; "
                              f"to send it again on purpose: `billing invoices send "
                              f"{reference}`")
        if latest.status == "queued":
            raise NothingToDo(f"{reference} is queued already")
        assert latest.id is not None
        uow.outbox.change(latest.id, status="queued", attempts=0, next_attempt_at=clock.now(),
                          last_error=f"re-queued by hand (was {latest.status}: "
                                     f"{latest.last_error or ''})"[:1000],
                          updated_at=clock.now())
        uow.commit()
        found = uow.outbox.get(latest.id)
    assert found is not None
    return found


def resend_document(uow: SqlUnitOfWork, clock: Clock, reference: str) -> OutboxRow:
    """Queue a new message for an issued document (a new Message-ID): sending it again on
    purpose, recorded as a message of its own."""
    with uow:
        row = uow.documents.by_reference(reference)
        if row is None or row.number is None:
            raise NothingToDo(f"no issued invoice or credit note {reference!r}")
        catalog = current_catalog(uow)
        if not catalog.settings.send_documents:
            raise NothingToDo("the catalog's settings say send_documents: false")
        now = clock.now()
        queue_documents(uow, catalog, [row], now)
        uow.commit()
        latest = uow.outbox.for_reference(row.number)[-1]
    return latest


def approve_run(uow: SqlUnitOfWork, clock: Clock, run_id: int, approved: bool,
                reason: str) -> int:
    """Release the held messages of a run (approved) or keep them held with the reason;
    the decision goes into the run's history. Returns how many messages it concerned."""
    now = clock.now()
    with uow:
        if approved:
            count = uow.outbox.release(run_id, now)
        else:
            count = uow.outbox.hold(run_id, f"rejected: {reason}", now)
        uow.runs.finish(run_id, approval={"decision": "approved" if approved else "rejected",
                                          "reason": reason, "at": now.isoformat(),
                                          "messages": count})
        uow.commit()
    return count
