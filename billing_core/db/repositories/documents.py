"""Invoices and credit notes, their gapless number series, and the usage they billed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from billing_core.db.models import DocumentRow, table
from billing_core.pricing.usage import Billed

DOCUMENT: Table = table("document")
SEQUENCE: Table = table("number_sequence")
BILLED: Table = table("billed_usage")

ISSUED = ("finalized", "paid", "void", "issued")


CHUNK = 5000   # ids per IN (...) list


def _row(mapping: Any) -> DocumentRow:
    return DocumentRow.model_validate(dict(mapping))


@dataclass(frozen=True)
class DocumentHead:
    """A document without its content: what listing, matching and ordering need."""

    id: int
    kind: str
    status: str
    draft_ref: str | None
    number: str | None
    subscription_id: str
    customer_id: str
    period: str
    generation: int
    reissue_of_id: int | None
    superseded_by_id: int | None
    facts_hash: str
    document_hash: str
    revision: int
    file_hashes: dict[str, Any] | None
    rendered_key: str | None


HEAD = [DOCUMENT.c[name] for name in DocumentHead.__dataclass_fields__]


class DocumentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self) -> Any:
        return select(*DOCUMENT.c)

    def _all(self, statement: Any) -> list[DocumentRow]:
        return [_row(m) for m in self.conn.execute(statement).mappings()]

    def get(self, document_id: int) -> DocumentRow | None:
        found = self._all(self._select().where(DOCUMENT.c.id == document_id))
        return found[0] if found else None

    def by_ids(self, ids: Iterable[int]) -> list[DocumentRow]:
        wanted = sorted(set(ids))
        found: list[DocumentRow] = []
        for start in range(0, len(wanted), CHUNK):
            found += self._all(self._select().where(DOCUMENT.c.id.in_(wanted[start:start + CHUNK]))
                               .order_by(DOCUMENT.c.id))
        return found

    def _columns_by_id(self, ids: Iterable[int], *names: str) -> dict[int, tuple[Any, ...]]:
        """These columns of these documents, by id (CHUNK ids per statement)."""
        wanted = sorted(set(ids))
        found: dict[int, tuple[Any, ...]] = {}
        for start in range(0, len(wanted), CHUNK):
            found.update((int(row[0]), tuple(row[1:])) for row in self.conn.execute(
                select(DOCUMENT.c.id, *(DOCUMENT.c[name] for name in names))
                .where(DOCUMENT.c.id.in_(wanted[start:start + CHUNK]))))
        return found

    def contents(self, ids: Iterable[int]) -> dict[int, str]:
        """The stored JSON of these documents, by id."""
        return {i: c for i, (c,) in self._columns_by_id(ids, "content").items()}

    def render_sources(self, ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
        """The stored JSON of these documents, its `document_hash` and the status, by id."""
        return {i: (c, h, s) for i, (c, h, s) in
                self._columns_by_id(ids, "content", "document_hash", "status").items()}

    def by_reference(self, reference: str) -> DocumentRow | None:
        """A document by its number, or a draft by its draft reference."""
        found = self._all(self._select().where(
            or_(DOCUMENT.c.number == reference, DOCUMENT.c.draft_ref == reference)))
        return found[0] if found else None

    def invoice_heads(self, periods: Iterable[str],
                      subscription_ids: Iterable[str] | None = None) -> list[DocumentHead]:
        """Every invoice (all generations and statuses) of these periods."""
        statement = select(*HEAD).where(DOCUMENT.c.kind == "invoice",
                                        DOCUMENT.c.period.in_(sorted(set(periods))))
        if subscription_ids is not None:
            statement = statement.where(DOCUMENT.c.subscription_id.in_(sorted(
                set(subscription_ids))))
        return self._heads(statement.order_by(DOCUMENT.c.id))

    def draft_heads(self, periods: Iterable[str] | None = None,
                    customers: Iterable[str] | None = None) -> list[DocumentHead]:
        """The drafts (of these periods and customers)."""
        statement = select(*HEAD).where(DOCUMENT.c.status == "draft")
        if periods is not None:
            statement = statement.where(DOCUMENT.c.period.in_(sorted(set(periods))))
        if customers is not None:
            statement = statement.where(DOCUMENT.c.customer_id.in_(sorted(set(customers))))
        return self._heads(statement.order_by(DOCUMENT.c.period, DOCUMENT.c.id))

    def _heads(self, statement: Any) -> list[DocumentHead]:
        return [DocumentHead(*row) for row in self.conn.execute(statement)]

    def credit_notes_for(self, document_id: int) -> list[DocumentRow]:
        return self._all(self._select().where(DOCUMENT.c.credited_document_id == document_id)
                         .order_by(DOCUMENT.c.id))

    def listing(self, *, period: str | None = None, statuses: Sequence[str] | None = None,
                customer: str | None = None, kind: str | None = None,
                limit: int | None = None) -> list[DocumentRow]:
        statement = self._select()
        if period:
            statement = statement.where(DOCUMENT.c.period == period)
        if statuses:
            statement = statement.where(DOCUMENT.c.status.in_(list(statuses)))
        if customer:
            statement = statement.where(DOCUMENT.c.customer_id == customer)
        if kind:
            statement = statement.where(DOCUMENT.c.kind == kind)
        statement = statement.order_by(DOCUMENT.c.period, DOCUMENT.c.kind.desc(),
                                       DOCUMENT.c.sequence, DOCUMENT.c.id)
        if limit:
            statement = statement.limit(limit)
        return self._all(statement)

    def needing_files_heads(self) -> list[DocumentHead]:
        """Issued documents whose files were never recorded (a crash after finalization)."""
        return self._heads(select(*HEAD).where(DOCUMENT.c.status.in_(ISSUED),
                                               DOCUMENT.c.file_hashes.is_(None))
                           .order_by(DOCUMENT.c.id))

    def period_heads(self, period: str) -> list[DocumentHead]:
        """Every document of a period, without its content."""
        return self._heads(select(*HEAD).where(DOCUMENT.c.period == period)
                           .order_by(DOCUMENT.c.id))

    def heads(self, ids: Iterable[int]) -> list[DocumentHead]:
        """These documents without their content, in id order."""
        wanted = sorted(set(ids))
        found: list[DocumentHead] = []
        for start in range(0, len(wanted), CHUNK):
            found += self._heads(select(*HEAD).where(
                DOCUMENT.c.id.in_(wanted[start:start + CHUNK])).order_by(DOCUMENT.c.id))
        return found

    def add(self, values: dict[str, Any]) -> int:
        result = self.conn.execute(insert(DOCUMENT).values(**values)
                                   .returning(DOCUMENT.c.id))
        return int(result.scalar_one())

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(DOCUMENT), rows)

    def change(self, document_id: int, **values: Any) -> None:
        self.conn.execute(update(DOCUMENT).where(DOCUMENT.c.id == document_id).values(**values))

    def change_many(self, changes: list[dict[str, Any]]) -> None:
        """One UPDATE per dict (each names the same columns, and the row's `id`), sent
        as one batch."""
        if not changes:
            return
        columns = [name for name in changes[0] if name != "id"]
        statement = (update(DOCUMENT).where(DOCUMENT.c.id == bindparam("row_id"))
                     .values({name: bindparam(f"new_{name}") for name in columns}))
        self.conn.execute(statement, [
            {"row_id": change["id"], **{f"new_{name}": change[name] for name in columns}}
            for change in changes])

    def change_if(self, document_id: int, expected: str, **values: Any) -> bool:
        """Update only if the document's status is still `expected`; False if not."""
        result = self.conn.execute(update(DOCUMENT).where(
            DOCUMENT.c.id == document_id, DOCUMENT.c.status == expected).values(**values))
        return result.rowcount == 1

    def delete_drafts(self, document_ids: Iterable[int]) -> None:
        ids = list(document_ids)
        if ids:
            self.conn.execute(DOCUMENT.delete().where(DOCUMENT.c.id.in_(ids),
                                                      DOCUMENT.c.status == "draft"))


class SequenceRepository:
    """Gapless series: numbers are taken inside the transaction that issues the documents,
    so a rollback (or a crash) gives them back. The row is locked until commit, so two
    transactions can never take the same number."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def take(self, series: str, count: int = 1) -> list[int]:
        """`count` consecutive numbers of `series`."""
        if count <= 0:
            return []
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(SEQUENCE).values(series=series, last_value=count)
        statement = statement.on_conflict_do_update(
            index_elements=[SEQUENCE.c.series],
            set_={"last_value": SEQUENCE.c.last_value + count},
        ).returning(SEQUENCE.c.last_value)
        last = int(self.conn.execute(statement).scalar_one())
        return list(range(last - count + 1, last + 1))

    def last(self, series: str) -> int:
        value = self.conn.execute(select(SEQUENCE.c.last_value)
                                  .where(SEQUENCE.c.series == series)).scalar()
        return int(value or 0)


@dataclass(frozen=True)
class BilledKey:
    subscription_id: str
    usage_period: str
    meter: str


class BilledUsageRepository:
    """Quantities billed by issued documents, per subscription, usage period and meter."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(BILLED), rows)

    def billed(self, subscription_ids: Iterable[str], periods: Iterable[str]
               ) -> dict[BilledKey, Billed]:
        """Net quantities billed by documents that are issued and not superseded by a
        reissue (a void keeps what it billed: voiding is not un-billing)."""
        subs, pers = sorted(set(subscription_ids)), sorted(set(periods))
        if not subs or not pers:
            return {}
        statement = (
            select(BILLED.c.subscription_id, BILLED.c.usage_period, BILLED.c.meter,
                   BILLED.c.quantity, BILLED.c.events, BILLED.c.amount)
            .select_from(BILLED.join(DOCUMENT, DOCUMENT.c.id == BILLED.c.document_id))
            .where(DOCUMENT.c.status.in_(ISSUED), DOCUMENT.c.superseded_by_id.is_(None),
                   BILLED.c.usage_period.in_(pers))
        )
        if len(subs) < 5000:
            statement = statement.where(BILLED.c.subscription_id.in_(subs))
        wanted = set(subs)
        totals: dict[BilledKey, Billed] = {}
        for sub_id, period, meter, quantity, events, amount in self.conn.execute(statement):
            if sub_id not in wanted:
                continue
            key = BilledKey(sub_id, period, meter)
            row = Billed(Decimal(quantity), None if events is None else int(events),
                         None if amount is None else Decimal(amount))
            totals[key] = totals[key].plus(row) if key in totals else row
        return totals

    def finalized_periods(self, subscription_ids: Iterable[str], periods: Iterable[str]
                          ) -> set[tuple[str, str]]:
        """(subscription, period) pairs that have an issued invoice."""
        subs, pers = sorted(set(subscription_ids)), sorted(set(periods))
        if not subs or not pers:
            return set()
        rows = self.conn.execute(
            select(DOCUMENT.c.subscription_id, DOCUMENT.c.period)
            .where(DOCUMENT.c.kind == "invoice", DOCUMENT.c.status.in_(ISSUED),
                   DOCUMENT.c.period.in_(pers),
                   and_(DOCUMENT.c.superseded_by_id.is_(None))))
        wanted = set(subs)
        return {(s, p) for s, p in rows if s in wanted}

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(BILLED)).scalar_one())
