"""The e-mail of an issued document: subject, plain-text and HTML bodies from the
templates in templates/email/ (HTML autoescaped), the PDF attached (and the Factur-X XML
when the document is an e-invoice), a Message-ID that is the same every time the same
message is built, so a receiving system can recognise a repeat."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from billing_core.documents.model import Document
from billing_core.render.html import email_environment

TEMPLATE = {"invoice": "invoice", "credit_note": "credit_note"}
# CRLF line ends; headers folded only past RFC 5322's hard limit (a subject folded at 78
# columns comes back with a leading space from some readers).
POLICY = SMTP.clone(max_line_length=998)


def _context(doc: Document) -> dict[str, Any]:
    return {"doc": doc, "locale": doc.locale, "last_day": doc.period_end - timedelta(days=1),
            "usage": [line for line in doc.lines if line.meter is not None][:10],
            "einvoice": doc.einvoice == "factur-x"}


def subject(doc: Document) -> str:
    template = email_environment().get_template(f"{TEMPLATE[doc.document_type]}.subject")
    return " ".join(template.render(**_context(doc)).split())[:250]


def message_id(reference: str, sequence: int, content_hash: str, sender: str) -> str:
    """<INV-2026-000001.1.3f5a9c2e7b10@example.com>: the document, which sending of it,
    and its content; the same every time this message is built."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "billflow.invalid"
    digest = hashlib.sha256(f"{reference}\x00{sequence}\x00{content_hash}".encode()
                            ).hexdigest()[:12]
    return f"<{reference}.{sequence}.{digest}@{domain}>"


def _headed(subject_line: str, sender_name: str, sender: str, reply_to: str | None,
            to: list[str], cc: list[str], message_id_value: str, when: Any) -> EmailMessage:
    """A new message with its headers set."""
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject_line
    message["From"] = formataddr((sender_name, sender))
    if reply_to and reply_to != sender:
        message["Reply-To"] = reply_to
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Message-ID"] = message_id_value
    message["Date"] = format_datetime(when)
    return message


def build_message(doc: Document, *, sender_name: str, sender: str, reply_to: str | None,
                  to: list[str], cc: list[str], subject_line: str, message_id_value: str,
                  pdf: bytes, xml: bytes | None, when: Any) -> EmailMessage:
    """The message, ready to send."""
    env = email_environment()
    name = TEMPLATE[doc.document_type]
    context = _context(doc)
    message = _headed(subject_line, sender_name, sender, reply_to, to, cc, message_id_value,
                      when)
    message.set_content(env.get_template(f"{name}.txt").render(**context))
    message.add_alternative(env.get_template(f"{name}.html").render(**context), subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"{doc.number}.pdf")
    if xml is not None:
        message.add_attachment(xml, maintype="application", subtype="xml",
                               filename="factur-x.xml")
    return message


def build_alert_message(alert: dict[str, Any], *, locale: str, customer_name: str,
                        sender_name: str, sender: str, reply_to: str | None, to: list[str],
                        cc: list[str], subject_line: str, message_id_value: str,
                        when: Any) -> EmailMessage:
    """A usage alert's e-mail (plain text, from templates/email/alert.txt)."""
    text = email_environment().get_template("alert.txt").render(
        alert=alert, locale=locale, customer_name=customer_name, seller=sender_name)
    message = _headed(subject_line, sender_name, sender, reply_to, to, cc, message_id_value,
                      when)
    message.set_content(text)
    return message
