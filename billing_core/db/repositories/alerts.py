"""Alerts that fired (each rule at most once per customer, subject and cycle)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from billing_core.db.models import AlertRow, table

ALERT: Table = table("alert")


class AlertRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def fire(self, rows: list[dict[str, Any]]) -> list[AlertRow]:
        """Record alerts; the ones that fired before (same rule, customer, subject and
        cycle) are left alone. Returns the new ones."""
        fired = []
        insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        for row in rows:
            statement = insert(ALERT).values(**row).on_conflict_do_nothing(
                index_elements=["rule_id", "customer_id", "subject", "period"]
            ).returning(*ALERT.c)
            found = self.conn.execute(statement).mappings().first()
            if found is not None:
                fired.append(AlertRow.model_validate(dict(found)))
        return fired

    def listing(self, customer_id: str | None = None, period: str | None = None,
                limit: int | None = None) -> list[AlertRow]:
        statement = select(*ALERT.c).order_by(ALERT.c.id.desc())
        if customer_id is not None:
            statement = statement.where(ALERT.c.customer_id == customer_id)
        if period is not None:
            statement = statement.where(ALERT.c.period == period)
        if limit is not None:
            statement = statement.limit(limit)
        return [AlertRow.model_validate(dict(m)) for m in self.conn.execute(statement).mappings()]
