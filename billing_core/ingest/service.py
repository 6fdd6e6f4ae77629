"""Ingesting files and replaying the quarantine, with a full accounting of every record."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from billing_core.catalog_store import customer_ids
from billing_core.db.models import QuarantineRow
from billing_core.ingest.readers import (
    CHUNK_SIZE,
    UnreadableInput,
    expand_paths,
    parse_json,
    read_records,
)
from billing_core.ingest.records import RawRecord
from billing_core.ingest.store import quarantine_rows, storable, store_chunk


@dataclass
class Accounting:
    """Counts of what became of the records: records = ingested + duplicates + rejected."""

    records: int = 0
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: Accounting) -> None:
        self.records += other.records
        self.ingested += other.ingested
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "ingested": self.ingested,
                "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass
class FileReport:
    path: str
    accounting: Accounting
    error: str | None = None


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> Accounting:
        total = Accounting()
        for f in self.files:
            total.add(f.accounting)
        return total

    @property
    def ok(self) -> bool:
        return not self.errors


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _insert_quarantine(conn: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    conn.execute(dialect_insert(QuarantineRow.__table__).on_conflict_do_nothing(), rows)


def ingest_file(engine: Engine, path: Path, customers: set[str], ingested_at: datetime,
                chunk_size: int = CHUNK_SIZE) -> FileReport:
    """Ingest one file chunk by chunk; each chunk commits on its own, so a read error later
    in the file keeps what was already stored (and re-running picks up the rest)."""
    accounting = Accounting()
    report = FileReport(str(path), accounting)
    source = str(path.resolve())
    try:
        for chunk in read_records(path, chunk_size):
            with engine.begin() as conn:
                outcomes = store_chunk(conn, chunk, customers, ingested_at, source)
                _insert_quarantine(conn, quarantine_rows(chunk, outcomes, ingested_at))
            _count(accounting, outcomes)
    except UnreadableInput as exc:
        report.error = str(exc)
    return report


def _count(accounting: Accounting, outcomes: list[Any]) -> None:
    accounting.records += len(outcomes)
    for outcome in outcomes:
        if outcome.status == "ingested":
            accounting.ingested += 1
        elif outcome.status == "duplicate":
            accounting.duplicates += 1
        else:
            accounting.rejected += 1
            accounting.reasons[outcome.reason] += 1


def ingest_paths(engine: Engine, paths: list[str | Path], *,
                 chunk_size: int = CHUNK_SIZE) -> IngestReport:
    """Ingest files and folders. Unreadable inputs are reported in `errors`; everything that
    could be read is stored, counted as duplicate, or quarantined with a reason."""
    files, problems = expand_paths(paths)
    report = IngestReport(errors=list(problems))
    customers = customer_ids(engine)
    ingested_at = _utcnow()
    for path in files:
        file_report = ingest_file(engine, path, customers, ingested_at, chunk_size)
        report.files.append(file_report)
        if file_report.error:
            report.errors.append(file_report.error)
    return report


def list_quarantine(engine: Engine, status: str | None = "pending", limit: int | None = 100,
                    reason: str | None = None) -> list[QuarantineRow]:
    """Quarantined records, oldest first."""
    statement = select(QuarantineRow).order_by(QuarantineRow.id)
    if status:
        statement = statement.where(QuarantineRow.status == status)
    if reason:
        statement = statement.where(QuarantineRow.reason == reason)
    if limit:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        return [QuarantineRow.model_validate(dict(row._mapping))
                for row in conn.execute(statement.with_only_columns(*QuarantineRow.__table__.c))]


def replay_quarantine(engine: Engine, chunk_size: int = CHUNK_SIZE) -> Accounting:
    """Try every pending quarantined record again (e.g. after its customer was added).

    A record that now passes is stored ('ingested') or found stored ('duplicate') and its
    quarantine row is closed with that status; one that still fails stays pending with its
    new reason and one more attempt. Nothing is deleted.
    """
    accounting = Accounting()
    customers = customer_ids(engine)
    now = _utcnow()
    table = QuarantineRow.__table__
    last_id = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(table.c.id, table.c.source, table.c.location, table.c.raw,
                       table.c.candidate, table.c.reason, table.c.detail)
                .where(table.c.status == "pending", table.c.id > last_id)
                .order_by(table.c.id).limit(chunk_size)).all()
            if not rows:
                break
            last_id = rows[-1].id
            records = [_replay_record(row) for row in rows]
            outcomes = []
            for source in sorted({r.source for r in records}):
                indices = [i for i, r in enumerate(records) if r.source == source]
                part = store_chunk(conn, [records[i] for i in indices], customers, now, source)
                outcomes.extend(zip(indices, part, strict=True))
            outcomes = [o for _, o in sorted(outcomes, key=lambda pair: pair[0])]
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome.status == "rejected":
                    values = {"reason": outcome.reason, "detail": storable(outcome.detail or ""),
                              "attempts": table.c.attempts + 1, "updated_at": now}
                else:
                    values = {"status": outcome.status, "resolved_event_id": outcome.event_id,
                              "attempts": table.c.attempts + 1, "updated_at": now}
                conn.execute(update(table).where(table.c.id == row.id).values(**values))
        _count(accounting, outcomes)
    return accounting


def _replay_record(row: Any) -> RawRecord:
    if row.candidate is None:  # could never be parsed: it fails the same way again
        return RawRecord(row.source, row.location, row.raw, error=(row.reason, row.detail))
    return RawRecord(row.source, row.location, row.raw, candidate=parse_json(row.candidate))
