"""Credit grants and their ledger: what a grant holds is the sum of its entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from billing_core.db.models import CreditEntryRow, CreditGrantRow, table
from billing_core.money import EXACT

GRANT: Table = table("credit_grant")
LEDGER: Table = table("credit_ledger")


CHUNK = 5000   # customers per IN (...) list

ENTRY_DEFAULTS: dict[str, Any] = {"document_id": None, "reference": None, "period": None,
                                  "note": ""}


@dataclass(frozen=True)
class GrantWithBalance:
    grant: CreditGrantRow
    balance: Decimal


def _sum(conn: Connection) -> Any:
    """An exact SUM of the ledger's amounts (SQLite's SUM would go through floats)."""
    if conn.dialect.name == "sqlite":
        return func.decimal_sum(LEDGER.c.amount)
    return func.sum(LEDGER.c.amount)


def _decimal(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


class CreditRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- grants -------------------------------------------------------------------------
    def add_grant(self, values: dict[str, Any], note: str = "") -> int:
        """A grant and its first entry (+amount), in the caller's transaction."""
        grant_id = int(self.conn.execute(insert(GRANT).values(**values)
                                         .returning(GRANT.c.id)).scalar_one())
        self.add_entries([{"grant_id": grant_id, "customer_id": values["customer_id"],
                           "kind": "grant", "amount": values["amount"],
                           "period": values.get("period"), "note": note,
                           "created_at": values["created_at"]}])
        return grant_id

    def grant_by_key(self, key: str) -> CreditGrantRow | None:
        row = self.conn.execute(select(*GRANT.c).where(GRANT.c.key == key)).mappings().first()
        return CreditGrantRow.model_validate(dict(row)) if row else None

    def grant(self, grant_id: int) -> CreditGrantRow | None:
        row = self.conn.execute(select(*GRANT.c).where(GRANT.c.id == grant_id)
                                ).mappings().first()
        return CreditGrantRow.model_validate(dict(row)) if row else None

    def grants(self, customer_ids: Iterable[str] | None = None, kind: str | None = None
               ) -> list[GrantWithBalance]:
        """Grants (of some customers, of one kind) with what each holds now, in id order.
        Many customers are read in chunks; each sums only the entries of its grants."""
        if customer_ids is None:
            return self._grants(None, kind)
        wanted = sorted(set(customer_ids))
        found: list[GrantWithBalance] = []
        for start in range(0, len(wanted), CHUNK):
            found += self._grants(wanted[start:start + CHUNK], kind)
        return sorted(found, key=lambda g: g.grant.id or 0) if len(wanted) > CHUNK else found

    def _grants(self, customers: list[str] | None, kind: str | None
                ) -> list[GrantWithBalance]:
        totals = select(LEDGER.c.grant_id, _sum(self.conn).label("balance"))
        statement = select(*GRANT.c)
        if customers is not None:
            theirs = GRANT.c.customer_id.in_(customers)
            totals = totals.where(LEDGER.c.grant_id.in_(select(GRANT.c.id).where(theirs)))
            statement = statement.where(theirs)
        if kind is not None:
            statement = statement.where(GRANT.c.kind == kind)
        sums = totals.group_by(LEDGER.c.grant_id).subquery()
        statement = (statement.add_columns(sums.c.balance)
                     .select_from(GRANT.outerjoin(sums, sums.c.grant_id == GRANT.c.id))
                     .order_by(GRANT.c.id))
        found = []
        for row in self.conn.execute(statement).mappings():
            data = dict(row)
            balance = _decimal(data.pop("balance"))
            found.append(GrantWithBalance(CreditGrantRow.model_validate(data), balance))
        return found

    def lock_customers(self, customer_ids: Iterable[str]) -> None:
        """Hold the customers' grants until the transaction ends, so two transactions
        cannot both spend the same balance (SQLite writes are serialized already)."""
        ids = sorted(set(customer_ids))
        if ids and self.conn.dialect.name == "postgresql":
            self.conn.execute(select(GRANT.c.id).where(GRANT.c.customer_id.in_(ids))
                              .order_by(GRANT.c.id).with_for_update())

    # --- entries ------------------------------------------------------------------------
    def add_entries(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(LEDGER), [{**ENTRY_DEFAULTS, **row} for row in rows])

    def balance(self, grant_id: int) -> Decimal:
        return _decimal(self.conn.execute(select(_sum(self.conn))
                                          .where(LEDGER.c.grant_id == grant_id)).scalar())

    def entries(self, customer_id: str | None = None, grant_id: int | None = None,
                document_id: int | None = None) -> list[CreditEntryRow]:
        statement = select(*LEDGER.c).order_by(LEDGER.c.id)
        if customer_id is not None:
            statement = statement.where(LEDGER.c.customer_id == customer_id)
        if grant_id is not None:
            statement = statement.where(LEDGER.c.grant_id == grant_id)
        if document_id is not None:
            statement = statement.where(LEDGER.c.document_id == document_id)
        return [CreditEntryRow.model_validate(dict(m))
                for m in self.conn.execute(statement).mappings()]

    def entitlement_totals(self, subscription_ids: Iterable[str], periods: Iterable[str]
                           ) -> dict[tuple[str, str, str], dict[str, Decimal]]:
        """Per (subscription, period, meter) of the unit grants: the sum of each entry
        kind (grant, apply, restore, rollover, expire)."""
        subs, pers = sorted(set(subscription_ids)), sorted(set(periods))
        if not subs or not pers:
            return {}
        statement = (select(GRANT.c.subscription_id, GRANT.c.period, GRANT.c.meter,
                            LEDGER.c.kind, LEDGER.c.amount)
                     .select_from(LEDGER.join(GRANT, GRANT.c.id == LEDGER.c.grant_id))
                     .where(GRANT.c.kind == "units", GRANT.c.subscription_id.in_(subs),
                            GRANT.c.period.in_(pers)))
        found: dict[tuple[str, str, str], dict[str, Decimal]] = {}
        for sub, period, meter, kind, amount in self.conn.execute(statement):
            kinds = found.setdefault((sub, period, meter), {})
            kinds[kind] = EXACT.add(kinds.get(kind, Decimal(0)), _decimal(amount))
        return found
