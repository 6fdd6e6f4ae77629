"""Usage events (stored in bulk by `billing_core.ingest.store`) and the quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from billing_core.db.models import QuarantineRow, table
from billing_core.ingest.records import Outcome, RawRecord
from billing_core.ingest.store import Classified, store_chunk

EVENT: Table = table("event")
QUARANTINE: Table = table("quarantine")


class EventRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def store(self, records: list[RawRecord], customers: set[str] | frozenset[str],
              ingested_at: datetime, source: str, classified: Classified | None = None
              ) -> list[Outcome]:
        """Validate (unless already `classified`), deduplicate and insert one chunk; one
        Outcome per record."""
        return store_chunk(self.conn, records, customers, ingested_at, source, classified)

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(EVENT)).scalar_one())

    def late_arrivals(self, since: datetime, before: datetime) -> list[tuple[str, str, int]]:
        """(customer, YYYY-MM, events) ingested after `since` with timestamps before
        `before`: usage that arrived for periods older than a look-back."""
        if self.conn.dialect.name == "postgresql":
            month = func.to_char(EVENT.c.ts, "YYYY-MM")
        else:
            month = func.substr(EVENT.c.ts, 1, 7)
        rows = self.conn.execute(
            select(EVENT.c.customer_id, month.label("month"), func.count())
            .where(EVENT.c.ingested_at > since, EVENT.c.ts < before)
            .group_by(EVENT.c.customer_id, month).order_by(EVENT.c.customer_id, month))
        return [(c, m, int(n)) for c, m, n in rows]


class QuarantineRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Quarantine rows; a record already quarantined (same file, place, text) is kept
        once."""
        if not rows:
            return
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        self.conn.execute(dialect.insert(QUARANTINE).on_conflict_do_nothing(), rows)

    def listing(self, status: str | None = "pending", limit: int | None = 100,
                reason: str | None = None) -> list[QuarantineRow]:
        statement = select(*QUARANTINE.c).order_by(QUARANTINE.c.id)
        if status:
            statement = statement.where(QUARANTINE.c.status == status)
        if reason:
            statement = statement.where(QUARANTINE.c.reason == reason)
        if limit:
            statement = statement.limit(limit)
        return [QuarantineRow.model_validate(dict(m))
                for m in self.conn.execute(statement).mappings()]

    def pending_after(self, last_id: int, limit: int) -> list[Any]:
        return list(self.conn.execute(
            select(QUARANTINE.c.id, QUARANTINE.c.source, QUARANTINE.c.location,
                   QUARANTINE.c.raw, QUARANTINE.c.candidate, QUARANTINE.c.reason,
                   QUARANTINE.c.detail)
            .where(QUARANTINE.c.status == "pending", QUARANTINE.c.id > last_id)
            .order_by(QUARANTINE.c.id).limit(limit)))

    def settle(self, row_id: int, outcome: Outcome, now: datetime, detail: str) -> None:
        """Record a replay: still rejected (new reason) or closed as ingested/duplicate."""
        if outcome.status == "rejected":
            values: dict[str, Any] = {"reason": outcome.reason, "detail": detail}
        else:
            values = {"status": outcome.status, "resolved_event_id": outcome.event_id}
        self.conn.execute(update(QUARANTINE).where(QUARANTINE.c.id == row_id).values(
            attempts=QUARANTINE.c.attempts + 1, updated_at=now, **values))
