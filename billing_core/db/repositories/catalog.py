"""Catalog versions (each applied catalog, whole) and the customer and subscription rows
that SQL joins against."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, case, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from billing_core.catalog.models import Catalog
from billing_core.db.models import table
from billing_core.db.types import dumps_exact, loads_exact

VERSION: Table = table("catalog_version")
CUSTOMER: Table = table("customer")
SUBSCRIPTION: Table = table("subscription")


@dataclass(frozen=True)
class StoredCatalog:
    """The catalog in force and the entities archived by `apply --prune` (kept as they
    were last applied, by section)."""

    version: int
    catalog: Catalog
    archived: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def storable(value: Any) -> Any:
    """A model dump as exact JSON values: Decimals stay numbers (never text, never
    floats), dates become YYYY-MM-DD."""
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def catalog_document(catalog: Catalog, archived: dict[str, list[dict[str, Any]]]
                     ) -> dict[str, Any]:
    return {"catalog": storable(catalog.model_dump(mode="python")),
            "archived": storable(archived)}


def document_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(dumps_exact(document).encode()).hexdigest()


_parsed: dict[str, tuple[Catalog, dict[str, list[dict[str, Any]]]]] = {}


def _parse(digest: str, document: dict[str, Any]
           ) -> tuple[Catalog, dict[str, list[dict[str, Any]]]]:
    """The catalog of a stored version (validated once per process and version)."""
    if digest not in _parsed:
        if len(_parsed) > 8:
            _parsed.clear()
        _parsed[digest] = (Catalog.model_validate(document["catalog"]),
                           document.get("archived", {}))
    return _parsed[digest]


class CatalogRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def latest(self) -> StoredCatalog | None:
        row = self.conn.execute(select(VERSION.c.id, VERSION.c.digest, VERSION.c.document)
                                .order_by(VERSION.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        document = row.document if isinstance(row.document, dict) else \
            loads_exact(row.document)
        catalog, archived = _parse(row.digest, document)
        return StoredCatalog(version=int(row.id), catalog=catalog, archived=archived)

    def add_version(self, document: dict[str, Any], source: str, now: datetime) -> int:
        result = self.conn.execute(insert(VERSION).values(
            applied_at=now, source=source, digest=document_digest(document),
            document=document).returning(VERSION.c.id))
        return int(result.scalar_one())

    def sync_rows(self, catalog: Catalog, archived: dict[str, list[dict[str, Any]]],
                  now: datetime) -> None:
        """Upsert the customer and subscription rows; mark archived ones (an entity that
        was archived before keeps the time it was archived)."""
        customers: list[dict[str, Any]] = [
            {"id": c.id, "name": c.name, "email": c.email, "address": c.address,
             "archived_at": None} for c in catalog.customers]
        customers += [{"id": c["id"], "name": c["name"], "email": c["email"],
                       "address": c.get("address", ""), "archived_at": now}
                      for c in archived.get("customers", [])]
        self._upsert(CUSTOMER, customers, ("name", "email", "address"))
        subscriptions: list[dict[str, Any]] = [
            {"id": s.id, "customer_id": s.customer, "product_key": s.product,
             "start_date": s.start, "end_date": s.end, "archived_at": None}
            for s in catalog.subscriptions]
        subscriptions += [{"id": s["id"], "customer_id": s["customer"],
                           "product_key": s["product"],
                           "start_date": date.fromisoformat(s["start"]),
                           "end_date": date.fromisoformat(s["end"]) if s.get("end") else None,
                           "archived_at": now}
                          for s in archived.get("subscriptions", [])]
        self._upsert(SUBSCRIPTION, subscriptions,
                     ("customer_id", "product_key", "start_date", "end_date"))

    def _upsert(self, table: Table, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
        if not rows:
            return
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        excluded = statement.excluded
        keep_first_archive = case(
            (excluded.archived_at.is_(None), None),
            else_=func.coalesce(table.c.archived_at, excluded.archived_at))
        self.conn.execute(statement.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={**{k: excluded[k] for k in columns}, "archived_at": keep_first_archive}),
            rows)

    def active_customer_ids(self) -> set[str]:
        return set(self.conn.execute(select(CUSTOMER.c.id)
                                     .where(CUSTOMER.c.archived_at.is_(None))).scalars())

    def archived_customer_ids(self) -> set[str]:
        return set(self.conn.execute(select(CUSTOMER.c.id)
                                     .where(CUSTOMER.c.archived_at.is_not(None))).scalars())
