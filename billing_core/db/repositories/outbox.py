"""The outbox: messages to send, and what became of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update

from billing_core.db.models import OutboxRow, table

OUTBOX: Table = table("outbox")
CHUNK = 5000   # ids per IN (...) list


def _rows(result: Any) -> list[OutboxRow]:
    return [OutboxRow.model_validate(dict(m)) for m in result.mappings()]


class OutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(OUTBOX).values(**values)
                                     .returning(OUTBOX.c.id)).scalar_one())

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(OUTBOX), rows)

    def get(self, message_id: int) -> OutboxRow | None:
        found = _rows(self.conn.execute(select(*OUTBOX.c).where(OUTBOX.c.id == message_id)))
        return found[0] if found else None

    def for_reference(self, reference: str) -> list[OutboxRow]:
        return _rows(self.conn.execute(select(*OUTBOX.c).where(OUTBOX.c.reference == reference)
                                       .order_by(OUTBOX.c.sequence)))

    def last_sequences(self, document_ids: Iterable[int]) -> dict[int, int]:
        """The last message sequence of each document (those with no message are left
        out)."""
        wanted = sorted(set(document_ids))
        found: dict[int, int] = {}
        for start in range(0, len(wanted), CHUNK):
            found.update((int(d), int(n)) for d, n in self.conn.execute(
                select(OUTBOX.c.document_id, func.max(OUTBOX.c.sequence))
                .where(OUTBOX.c.document_id.in_(wanted[start:start + CHUNK]))
                .group_by(OUTBOX.c.document_id)))
        return found

    def listing(self, status: str | None = None, reference: str | None = None,
                limit: int | None = None) -> list[OutboxRow]:
        statement = select(*OUTBOX.c).order_by(OUTBOX.c.id)
        if status:
            statement = statement.where(OUTBOX.c.status == status)
        if reference:
            statement = statement.where(OUTBOX.c.reference == reference)
        if limit:
            statement = statement.limit(limit)
        return _rows(self.conn.execute(statement))

    def due(self, now: datetime, references: Iterable[str] | None = None,
            limit: int = 500) -> list[OutboxRow]:
        statement = select(*OUTBOX.c).where(OUTBOX.c.status == "queued",
                                            OUTBOX.c.next_attempt_at <= now)
        if references is not None:
            statement = statement.where(OUTBOX.c.reference.in_(list(references)))
        return _rows(self.conn.execute(statement.order_by(OUTBOX.c.id).limit(limit)))

    def next_due(self, references: Iterable[str] | None = None) -> datetime | None:
        statement = select(func.min(OUTBOX.c.next_attempt_at)).where(
            OUTBOX.c.status == "queued")
        if references is not None:
            statement = statement.where(OUTBOX.c.reference.in_(list(references)))
        value = self.conn.execute(statement).scalar()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value

    def claim(self, message_id: int, now: datetime) -> bool:
        """queued -> sending (False if somebody else took it or it is no longer queued)."""
        result = self.conn.execute(update(OUTBOX).where(
            OUTBOX.c.id == message_id, OUTBOX.c.status == "queued").values(
            status="sending", sending_at=now, attempts=OUTBOX.c.attempts + 1, updated_at=now))
        return result.rowcount == 1

    def change(self, message_id: int, **values: Any) -> None:
        self.conn.execute(update(OUTBOX).where(OUTBOX.c.id == message_id).values(**values))

    def release(self, run_id: int, now: datetime) -> int:
        """held -> queued for the messages of one billing run (approved)."""
        return int(self.conn.execute(update(OUTBOX).where(
            OUTBOX.c.billing_run_id == run_id, OUTBOX.c.status == "held").values(
            status="queued", next_attempt_at=now, last_error=None, updated_at=now)).rowcount)

    def hold(self, run_id: int, reason: str, now: datetime) -> int:
        """Keep the held messages of a run held, with the reason (rejected)."""
        return int(self.conn.execute(update(OUTBOX).where(
            OUTBOX.c.billing_run_id == run_id, OUTBOX.c.status == "held").values(
            last_error=reason, updated_at=now)).rowcount)

    def held_for_run(self, run_id: int) -> list[OutboxRow]:
        return _rows(self.conn.execute(select(*OUTBOX.c).where(
            OUTBOX.c.billing_run_id == run_id, OUTBOX.c.status == "held")
            .order_by(OUTBOX.c.id)))

    def counts(self) -> dict[str, int]:
        return {status: int(n) for status, n in self.conn.execute(
            select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))}
