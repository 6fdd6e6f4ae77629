"""The unit of work: one transaction, and the repositories that work inside it.

    with uow:                       # a write transaction (BEGIN IMMEDIATE on SQLite)
        uow.documents.add(...)
        uow.sequences.take(...)
        uow.commit()                # all of it, or (on leaving without commit) none

    with uow.read():                # a read-only transaction: one consistent snapshot
        ...

A use case takes a unit of work, so one business operation is one transaction; the same
object can be entered again for the next transaction.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from billing_core.db.engine import WRITE
from billing_core.db.repositories.alerts import AlertRepository
from billing_core.db.repositories.catalog import CatalogRepository
from billing_core.db.repositories.credits import CreditRepository
from billing_core.db.repositories.documents import (
    BilledUsageRepository,
    DocumentRepository,
    SequenceRepository,
)
from billing_core.db.repositories.events import EventRepository, QuarantineRepository
from billing_core.db.repositories.outbox import OutboxRepository
from billing_core.db.repositories.runs import LeaseRepository, RunRepository


class SqlUnitOfWork:
    catalog: CatalogRepository
    events: EventRepository
    quarantine: QuarantineRepository
    documents: DocumentRepository
    sequences: SequenceRepository
    billed: BilledUsageRepository
    runs: RunRepository
    leases: LeaseRepository
    outbox: OutboxRepository
    credits: CreditRepository
    alerts: AlertRepository
    connection: Connection

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = True
        self._depth = 0

    def read(self) -> SqlUnitOfWork:
        """Enter as a read-only transaction (no write lock on SQLite)."""
        self._write = False
        return self

    def __enter__(self) -> SqlUnitOfWork:
        if self._depth:
            raise RuntimeError("a unit of work is not re-entrant; finish one transaction "
                               "before starting the next")
        connection = self.engine.connect()
        if self._write and self.engine.dialect.name == "sqlite":
            connection = connection.execution_options(**WRITE)
        self.connection = connection
        self._transaction = connection.begin()
        self._depth = 1
        conn = connection
        self.catalog = CatalogRepository(conn)
        self.events = EventRepository(conn)
        self.quarantine = QuarantineRepository(conn)
        self.documents = DocumentRepository(conn)
        self.sequences = SequenceRepository(conn)
        self.billed = BilledUsageRepository(conn)
        self.runs = RunRepository(conn)
        self.leases = LeaseRepository(conn)
        self.outbox = OutboxRepository(conn)
        self.credits = CreditRepository(conn)
        self.alerts = AlertRepository(conn)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self.connection.close()
            self._depth = 0
            self._write = True

    def commit(self) -> None:
        self._transaction.commit()

    def rollback(self) -> None:
        self._transaction.rollback()
