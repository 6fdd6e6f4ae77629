"""Sending one message, with its failure classified:

- TransientFailure: nothing was delivered and trying later may work (connection refused or
  reset before the message was handed over, a 4xx reply).
- PermanentFailure: the server refused it for good (a 5xx reply, every recipient refused).
- UnknownOutcome: the message was handed over but no final reply came (the connection
  dropped or timed out after the data was sent): it may have been delivered, so it must
  never be sent again without a person deciding.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol

from billing_core.mail.settings import MailSettings
from billing_core.render.files import write_atomic


class DeliveryFailure(Exception):
    pass


class TransientFailure(DeliveryFailure):
    pass


class PermanentFailure(DeliveryFailure):
    pass


class UnknownOutcome(DeliveryFailure):
    pass


class Transport(Protocol):
    def send(self, message: EmailMessage, sender: str, recipients: list[str],
             name: str = "") -> str:
        """Deliver; returns a note (e.g. recipients refused while others accepted).
        `name` names the message where it is kept as a file."""
        ...

    def close(self) -> None:
        ...


def _reply(code: int, text: bytes | str, what: str) -> DeliveryFailure:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    message = f"{what}: {code} {' '.join(detail.split())}"
    return TransientFailure(message) if 400 <= code < 500 else PermanentFailure(message)


class SmtpTransport:
    """One SMTP connection, opened on first use and reused for every message."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self.connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.tls == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                      context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            conn.ehlo_or_helo_if_needed()
            if s.tls == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if s.user:
                conn.login(s.user, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise _reply(500 if exc.smtp_code >= 500 else exc.smtp_code, exc.smtp_error,
                         "login refused") from None
        except smtplib.SMTPResponseException as exc:
            raise _reply(exc.smtp_code, exc.smtp_error, "connection refused") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientFailure(f"cannot connect to {s.host}:{s.port}: {exc}") from None
        return conn

    def send(self, message: EmailMessage, sender: str, recipients: list[str],
             name: str = "") -> str:
        if self.connection is None:
            self.connection = self._connect()
        conn = self.connection
        try:
            code, text = conn.mail(sender)
            if code != 250:
                raise _reply(code, text, "sender refused")
            refused = {}
            for recipient in recipients:
                code, text = conn.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, text)
            if len(refused) == len(recipients):
                code, text = next(iter(refused.values()))
                raise _reply(code, text, "every recipient refused")
            code, text = conn.docmd("data")
            if code != 354:
                raise _reply(code, text, "message refused")
        except DeliveryFailure:
            self._reset()
            raise
        except (OSError, smtplib.SMTPException) as exc:  # before the data: not delivered
            self.close()
            raise TransientFailure(f"connection lost before the message was sent: "
                                   f"{exc}") from None
        try:  # the message is handed over: from here on, a lost reply is an unknown fate
            data = re.sub(rb"(?m)^\.", b"..", message.as_bytes())
            if not data.endswith(b"\r\n"):
                data += b"\r\n"
            conn.send(data + b".\r\n")
            code, text = conn.getreply()
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            self.close()
            raise UnknownOutcome(f"no reply after the message was sent ({exc}); it may "
                                 f"have been delivered") from None
        if code != 250:
            self._reset()
            raise _reply(code, text, "message refused after its data")
        return "; ".join(f"{r} refused: {c} {t.decode(errors='replace')}"
                         for r, (c, t) in refused.items())

    def _reset(self) -> None:
        try:
            if self.connection is not None:
                self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileTransport:
    """Writes each message to FOLDER/<name>.eml instead of sending it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage, sender: str, recipients: list[str],
             name: str = "") -> str:
        name = name or str(message["Message-ID"]).strip("<>")
        try:
            write_atomic(self.folder / f"{name}.eml", message.as_bytes())
        except OSError as exc:
            raise TransientFailure(f"cannot write {self.folder}: {exc.strerror}") from None
        return ""

    def close(self) -> None:
        pass

    def __enter__(self) -> FileTransport:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        pass


def transport_for(settings: MailSettings) -> SmtpTransport | FileTransport:
    if settings.kind == "file":
        assert settings.folder is not None
        return FileTransport(settings.folder)
    return SmtpTransport(settings)
