"""Where mail goes, from the environment; the password is never printed.

    BILLING_MAIL_URL=smtp://user@mail.example.com:587     STARTTLS (required)
    BILLING_MAIL_URL=smtps://user@mail.example.com:465    TLS from the start
    BILLING_MAIL_URL=smtp://127.0.0.1:25?tls=none         a local relay without TLS
    BILLING_MAIL_URL=file:///var/billing/outbox/          .eml files instead (for trials)
    BILLING_SMTP_URL=...                                  the same, for an SMTP URL
    BILLING_SMTP_PASSWORD=...                             (or a Prefect Secret block, named
                                                          by BILLING_SMTP_PASSWORD_BLOCK)

Query options: `tls=starttls|tls|none`, `timeout=SECONDS` (default 30).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class MailSettingError(ValueError):
    """The mail settings cannot work; the message says how to fix them."""


@dataclass(frozen=True)
class MailSettings:
    kind: str                        # smtp | file
    host: str = ""
    port: int = 0
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: str = "starttls"            # starttls | tls | none
    timeout: float = 30.0
    folder: Path | None = None

    def describe(self) -> str:
        """Where mail goes, for logs (no password)."""
        if self.kind == "file":
            return f"files in {self.folder}"
        who = f"{self.user}@" if self.user else ""
        return f"smtp://{who}{self.host}:{self.port} ({self.tls.upper()})"


def mail_settings(environ: dict[str, str] | None = None,
                  password: str | None = None) -> MailSettings | None:
    """The mail settings of the environment, or None when delivery is not configured."""
    env = os.environ if environ is None else environ
    url = env.get("BILLING_MAIL_URL") or env.get("BILLING_SMTP_URL")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = Path(unquote(parts.path))
        if not folder.is_absolute():
            raise MailSettingError("BILLING_MAIL_URL=file:///... needs an absolute folder")
        return MailSettings("file", folder=folder)
    if parts.scheme not in ("smtp", "smtps"):
        raise MailSettingError(f"BILLING_MAIL_URL must start with smtp://, smtps:// or "
                               f"file://, got {parts.scheme or 'no scheme'}://")
    if not parts.hostname:
        raise MailSettingError("BILLING_MAIL_URL names no host")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = options.get("tls", "tls" if parts.scheme == "smtps" else "starttls")
    if tls not in ("starttls", "tls", "none"):
        raise MailSettingError(f"tls must be starttls, tls or none, got {tls!r}")
    try:
        timeout = float(options.get("timeout", "30"))
        port = parts.port or (465 if tls == "tls" else 587)
    except ValueError as exc:
        raise MailSettingError(f"BILLING_MAIL_URL: {exc}") from None
    user = unquote(parts.username) if parts.username else None
    secret = password or (unquote(parts.password) if parts.password else None) \
        or env.get("BILLING_SMTP_PASSWORD")
    return MailSettings("smtp", parts.hostname, port, user, secret, tls, timeout)
