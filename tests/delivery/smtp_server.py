"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can be told
to refuse, fail for a while, stall, or drop the connection after the data."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    mode: str = "accept"            # accept | refuse | tempfail | stall | drop
    failures_left: int = 0          # tempfail this many times, then accept
    refused: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if self.mode == "refuse" or address in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "tempfail" and self.failures_left > 0:
            self.failures_left -= 1
            return "451 4.3.0 Mail server temporarily rejected message, try again later"
        if self.mode == "stall":
            await asyncio.sleep(6)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content or envelope.content))
        if self.mode == "drop":
            server.transport.close()   # the data is in, the reply never leaves
            return "250 OK"
        return "250 OK: queued"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none&timeout=3"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
