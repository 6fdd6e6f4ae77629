"""Billing-run history and the leases that name who holds a lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from billing_core.db.models import BillingRunRow, LeaseRow, table

RUN: Table = table("billing_run")
LEASE: Table = table("lease")


class RunRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def start(self, **values: Any) -> int:
        result = self.conn.execute(insert(RUN).values(status="running", **values)
                                   .returning(RUN.c.id))
        return int(result.scalar_one())

    def finish(self, run_id: int, **values: Any) -> None:
        self.conn.execute(update(RUN).where(RUN.c.id == run_id).values(**values))

    def get(self, run_id: int) -> BillingRunRow | None:
        row = self.conn.execute(select(*RUN.c).where(RUN.c.id == run_id)).mappings().first()
        return BillingRunRow.model_validate(dict(row)) if row else None

    def latest(self, limit: int = 20, period: str | None = None) -> list[BillingRunRow]:
        statement = select(*RUN.c).order_by(RUN.c.id.desc()).limit(limit)
        if period:
            statement = statement.where(RUN.c.period == period)
        return [BillingRunRow.model_validate(dict(m))
                for m in self.conn.execute(statement).mappings()]

    def running(self) -> list[BillingRunRow]:
        return [BillingRunRow.model_validate(dict(m)) for m in self.conn.execute(
            select(*RUN.c).where(RUN.c.status == "running").order_by(RUN.c.id)).mappings()]

    def mark_crashed(self, run_ids: list[int], now: datetime) -> None:
        if run_ids:
            self.conn.execute(update(RUN).where(RUN.c.id.in_(run_ids),
                                                RUN.c.status == "running")
                              .values(status="crashed", ended_at=now,
                                      error="the process stopped without finishing (killed "
                                            "or crashed); re-run to complete the work"))

    def last_started(self, kinds: tuple[str, ...], before_id: int | None = None
                     ) -> BillingRunRow | None:
        """The latest run of these kinds (before run `before_id` when given)."""
        statement = select(*RUN.c).where(RUN.c.kind.in_(kinds))
        if before_id is not None:
            statement = statement.where(RUN.c.id < before_id)
        row = self.conn.execute(statement.order_by(RUN.c.id.desc()).limit(1)
                                ).mappings().first()
        return BillingRunRow.model_validate(dict(row)) if row else None


class LeaseRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def take(self, name: str, run_id: int | None, pid: int, hostname: str,
             now: datetime) -> None:
        self.conn.execute(delete(LEASE).where(LEASE.c.name == name))
        self.conn.execute(insert(LEASE).values(name=name, run_id=run_id, pid=pid,
                                               hostname=hostname, acquired_at=now))

    def get(self, name: str) -> LeaseRow | None:
        row = self.conn.execute(select(*LEASE.c).where(LEASE.c.name == name)).mappings().first()
        return LeaseRow.model_validate(dict(row)) if row else None
