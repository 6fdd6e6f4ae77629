"""Bulk storage of one chunk of records: validate, deduplicate, insert, quarantine.

Every record gets exactly one Outcome. Events are written in one batch per chunk
(executemany on SQLite, COPY into a staging table on PostgreSQL), never one statement
per event; the chunk's quarantine rows are written in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from billing_core.db.types import dumps_exact, sqlite_datetime
from billing_core.errors import describe
from billing_core.ingest.fastlane import fast_event
from billing_core.ingest.readers import parse_line
from billing_core.ingest.records import Outcome, RawRecord, Reason, ValidEvent
from billing_core.ingest.validate import Rejected, validate
from billing_core.limits import MAX_RECORD_BYTES
from billing_core.metering import rollup

LOOKUP_BATCH = 5_000
# SQLite: each chunk is one transaction, and the pages it dirties are written once for
# all its rows. Bigger transactions, with a page cache that holds their dirty pages, write
# each page once for many rows: at 3M events and 10,000 customers, 18.8k -> 28.7k
# records/s, peak RSS 328 -> 623 MB (fourth pass, with events then indexed by time, which
# took every event to a random leaf; they are indexed by month since: event_layout).
SQLITE_CHUNK = 100_000
SQLITE_CACHE_KIB = 262_144     # 256 MiB for the ingest's connection, taken as pages are read
POSTGRES_CHUNK = 20_000


def chunk_size_for(dialect: str) -> int:
    """Records per chunk (and per transaction) for this database."""
    return SQLITE_CHUNK if dialect == "sqlite" else POSTGRES_CHUNK


def raw_hash(raw: str) -> str:
    return hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def candidate_json(candidate: dict[str, Any] | None) -> str | None:
    """The candidate as exact JSON text for the quarantine (datetimes as ISO text)."""
    if candidate is None:
        return None
    try:
        text = dumps_exact({k: v.isoformat() if isinstance(v, datetime) else v
                            for k, v in candidate.items()})
    except (TypeError, ValueError, RecursionError, ArithmeticError):
        return None
    if len(text) > 4 * MAX_RECORD_BYTES:   # a number like 1e999999 written out
        return None
    return storable(text)


Classified = tuple[list[Outcome | None], dict[str, ValidEvent], dict[str, list[int]]]


def classify(records: list[RawRecord], customers: set[str] | frozenset[str],
             ingested_at: datetime) -> Classified:
    """Validate and deduplicate within the chunk.

    Returns outcomes (None where the record is a new event pending storage), the new events
    by id, and for each new event id the indices of the records that carry it.
    """
    outcomes: list[Outcome | None] = [None] * len(records)
    fresh: dict[str, ValidEvent] = {}
    holders: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        event = None
        if not record.parsed:
            try:
                event = fast_event(record.raw, customers, ingested_at)
            except Exception:   # never expected; the exact lane then says what is wrong
                event = None
            if event is None:
                parse_line(record)
        if event is None:
            if record.error is not None:
                outcomes[i] = Outcome("rejected", *record.error)
                continue
            assert record.candidate is not None  # a record without an error has one
            try:
                event = validate(record.candidate, customers, ingested_at, record.clean)
            except Rejected as exc:
                outcomes[i] = Outcome("rejected", exc.reason, exc.detail)
                continue
            except Exception as exc:  # whatever one record does, it costs no other record
                outcomes[i] = Outcome("rejected", Reason.INVALID_RECORD,
                                      f"cannot be read as an event: {describe(exc)}")
                continue
        first = fresh.get(event.event_id)
        if first is None:
            fresh[event.event_id] = event
            holders[event.event_id] = [i]
        elif first.payload_hash == event.payload_hash:
            outcomes[i] = Outcome("duplicate", event_id=event.event_id)
        else:
            outcomes[i] = Outcome("rejected", Reason.CONFLICTING_DUPLICATE,
                                  f"event_id {event.event_id!r} was already sent earlier in "
                                  f"this input with different content")
    return outcomes, fresh, holders


_BY_LIST = "SELECT event_id, payload_hash FROM event WHERE event_id = ANY(%s)"
_BY_TEXT = ("SELECT event_id, payload_hash FROM event "
            "WHERE event_id = ANY(string_to_array(%s, chr(31)))")
_BY_JSON = ("SELECT event_id, payload_hash FROM event "
            "WHERE event_id IN (SELECT value FROM json_each(?))")
ID_SEPARATOR = "\x1f"


def _id_argument(batch: list[str]) -> tuple[str, Any]:
    """PostgreSQL's look-up of a batch of ids: one text of the ids joined by the unit
    separator (U+001F), split by the server. Validated ids are non-empty printable text,
    so none holds it; a batch where one does, or with an empty id, is sent as an array
    instead. The array costs about 1.6 us per id in psycopg's Python list dumper (1.6 s
    of a 1M-event ingest)."""
    joined = ID_SEPARATOR.join(batch)
    if joined.count(ID_SEPARATOR) == len(batch) - 1 and "" not in batch:
        return _BY_TEXT, joined
    return _BY_LIST, batch


def _stored_hashes(conn: Connection, ids: list[str]) -> dict[str, str]:
    """Payload hashes of the ids already stored: one bound parameter per batch (the ids as
    one text on PostgreSQL, a JSON list on SQLite), so no statement is compiled per id."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), LOOKUP_BATCH):
        batch = ids[start:start + LOOKUP_BATCH]
        if conn.dialect.name == "postgresql":
            query, argument = _id_argument(batch)
        else:
            query, argument = _BY_JSON, json.dumps(batch)
        for event_id, payload_hash in conn.exec_driver_sql(query, (argument,)):
            found[event_id] = payload_hash
    return found


def _insert_sqlite(conn: Connection, events: list[ValidEvent], source: str,
                   ingested_at: datetime) -> set[str]:
    stamp = sqlite_datetime(ingested_at)
    rows = [(e.event_id, e.customer_id, e.event_name, sqlite_datetime(e.ts),
             e.metadata_json, e.payload_hash, stamp, source) for e in events]
    dbapi: Any = conn.connection.driver_connection
    before = dbapi.total_changes
    conn.exec_driver_sql(
        "INSERT INTO event (event_id, customer_id, event_name, ts, metadata, payload_hash, "
        "ingested_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
    if dbapi.total_changes - before != len(rows):
        # Cannot happen: the look-up and this insert share one transaction and SQLite lets
        # one writer at a time (a racing writer gets "database is locked" instead). Should it
        # ever, the chunk's transaction rolls back and the ingest stops; re-running is safe.
        raise ConcurrentWrite("events were stored by another writer during this chunk")
    return {e.event_id for e in events}


class ConcurrentWrite(RuntimeError):
    """An invariant broke: events appeared between a chunk's look-up and its insert."""


def _insert_postgres(conn: Connection, events: list[ValidEvent], source: str,
                     ingested_at: datetime) -> set[str]:
    """COPY straight into the event table (none of these ids was stored at the look-up);
    if a concurrent writer stored one since, the COPY fails on the unique key, is rolled
    back to its savepoint, and the chunk goes through a staging table instead."""
    from sqlalchemy.exc import IntegrityError

    columns = "event_id, customer_id, event_name, ts, metadata, payload_hash, ingested_at, source"
    driver: Any = conn.connection.driver_connection
    # The times go as ISO text (naive UTC, as psycopg would write them): its datetime
    # dumper cost about 1 us per value, 2 s of a 1M-event ingest.
    stamp = ingested_at.isoformat()
    rows = [(e.event_id, e.customer_id, e.event_name, e.ts.isoformat(), e.metadata_json,
             e.payload_hash, stamp, source) for e in events]
    try:
        with conn.begin_nested(), \
                driver.cursor().copy(f"COPY event ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return {e.event_id for e in events}
    except IntegrityError:
        pass
    except Exception as exc:   # psycopg's own error, not wrapped by SQLAlchemy here
        if getattr(exc, "sqlstate", None) != "23505":
            raise
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS event_stage "
        "(LIKE event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    cursor = driver.cursor()
    with cursor.copy(f"COPY event_stage ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO event ({columns}) SELECT {columns} FROM event_stage "
        f"ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
    inserted = {row[0] for row in cursor.fetchall()}
    cursor.execute("TRUNCATE event_stage")
    return inserted


def store_chunk(conn: Connection, records: list[RawRecord], customers: set[str] | frozenset[str],
                ingested_at: datetime, source: str, classified: Classified | None = None
                ) -> list[Outcome]:
    """Classify (unless `classified` is `classify`'s result for these records, computed
    earlier) and store one chunk inside the caller's transaction."""
    if classified is None:
        classified = classify(records, customers, ingested_at)
    first, fresh, holders = classified
    outcomes = list(first)   # settled here; the caller's copy stays as classified (retries)
    if fresh and conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    if fresh:
        rollup.hold_for_storing(conn)
        stored = _stored_hashes(conn, list(fresh))
        new_events: list[ValidEvent] = []
        for event_id, event in fresh.items():
            known = stored.get(event_id)
            if known is None:
                new_events.append(event)
            else:
                _settle(outcomes, holders[event_id], event_id, known == event.payload_hash)
        if new_events:
            insert = _insert_postgres if conn.dialect.name == "postgresql" else _insert_sqlite
            inserted = insert(conn, new_events, source, ingested_at)
            lost = [e for e in new_events if e.event_id not in inserted]
            now_stored = _stored_hashes(conn, [e.event_id for e in lost]) if lost else {}
            for event in new_events:
                indices = holders[event.event_id]
                if event.event_id in inserted:
                    outcomes[indices[0]] = Outcome("ingested", event_id=event.event_id)
                    for i in indices[1:]:
                        outcomes[i] = Outcome("duplicate", event_id=event.event_id)
                else:  # stored by a concurrent writer between our look-up and insert
                    same = now_stored.get(event.event_id) == event.payload_hash
                    _settle(outcomes, indices, event.event_id, same)
    unsettled = outcomes.count(None)
    if unsettled:
        raise AssertionError(f"{unsettled} record(s) left without an outcome")
    return outcomes  # type: ignore[return-value]


def _settle(outcomes: list[Outcome | None], indices: Iterable[int], event_id: str,
            same: bool) -> None:
    for i in indices:
        outcomes[i] = (Outcome("duplicate", event_id=event_id) if same else
                       Outcome("rejected", Reason.CONFLICTING_DUPLICATE,
                               f"event_id {event_id!r} is already stored with different "
                               f"content"))


def storable(raw: str) -> str:
    """Raw text as a database can hold it: NUL characters (PostgreSQL text refuses them) and
    lone surrogates (not encodable as UTF-8) are written as escapes."""
    text = raw.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _replayable(outcome: Outcome) -> bool:
    """Only records a catalog change can make valid are kept with their parsed form;
    the others fail the same way on every replay."""
    return outcome.reason in (Reason.UNKNOWN_CUSTOMER, Reason.CONFLICTING_DUPLICATE)


def quarantine_rows(records: list[RawRecord], outcomes: list[Outcome],
                    now: datetime) -> list[dict[str, Any]]:
    """Quarantine rows for the rejected records of a chunk."""
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome.status == "rejected" and _replayable(outcome):
            parse_line(record)   # a record the fast lane took keeps its parsed form too
    return [
        {"source": storable(r.source), "location": r.location, "raw": storable(r.raw),
         "raw_hash": raw_hash(r.raw),
         "candidate": candidate_json(r.candidate) if _replayable(o) else None,
         "reason": o.reason,
         "detail": storable(o.detail or ""),
         "status": "pending", "attempts": 1, "created_at": now, "updated_at": now}
        for r, o in zip(records, outcomes, strict=True) if o.status == "rejected"
    ]
