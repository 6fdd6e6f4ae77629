"""Use cases: apply a catalog, read the catalog in force."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_core.catalog.models import Catalog
from billing_core.catalog.validation import (
    SECTIONS,
    CatalogError,
    Problems,
    check_whole,
    identity,
)
from billing_core.clock import Clock
from billing_core.db.repositories.catalog import catalog_document, document_digest, storable
from billing_core.services.unit_of_work import SqlUnitOfWork


class NoCatalog(LookupError):
    """No catalog has been applied yet."""

    def __init__(self) -> None:
        super().__init__("no catalog applied yet: run `billing catalog apply FILE.yaml`")


@dataclass(frozen=True)
class ApplySummary:
    meters: int
    products: int
    charges: int
    customers: int
    subscriptions: int
    archived: dict[str, int]
    version: int | None          # None: nothing changed, no new version
    changed: bool


def current_catalog(uow: SqlUnitOfWork) -> Catalog:
    """The catalog in force (inside the caller's transaction); NoCatalog if none."""
    stored = uow.catalog.latest()
    if stored is None:
        raise NoCatalog()
    return stored.catalog


def load_catalog(uow: SqlUnitOfWork) -> Catalog:
    """The catalog in force, read in its own transaction."""
    with uow.read():
        return current_catalog(uow)


def _merge(stored: Catalog | None, archived: dict[str, list[dict[str, Any]]],
           incoming: Catalog, prune: bool
           ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]],
                      dict[str, list[tuple[str, Any]]]]:
    """Top-level values and sections after upserting `incoming` over `stored`; returns
    (top-level fields, archived entities, sections with each item's place)."""
    top: dict[str, Any] = {"currency": incoming.currency}
    for name in ("seller", "settings", "taxes"):
        if name in incoming.model_fields_set or stored is None:
            top[name] = getattr(incoming, name)
        else:
            top[name] = getattr(stored, name)
    new_archived: dict[str, list[dict[str, Any]]] = {}
    sections: dict[str, list[tuple[str, Any]]] = {}
    for name in SECTIONS:
        items: dict[str, tuple[str, Any]] = {}
        for item in getattr(stored, name) if stored is not None else ():
            key = identity(name, item)
            items[key] = (f"{name} {key!r} (applied earlier)", item)
        incoming_ids = set()
        for i, item in enumerate(getattr(incoming, name)):
            key = identity(name, item)
            incoming_ids.add(key)
            items[key] = (f"{name}[{i}]", item)
        kept_archive = [a for a in archived.get(name, [])
                        if identity(name, a) not in incoming_ids]
        if prune:
            for key in sorted(set(items) - incoming_ids):
                kept_archive.append(storable(items.pop(key)[1].model_dump(mode="python")))
        if kept_archive:
            new_archived[name] = sorted(kept_archive, key=lambda a: identity(name, a))
        sections[name] = list(items.values())
    return top, new_archived, sections


def apply_catalog(uow: SqlUnitOfWork, catalog: Catalog, source: str, clock: Clock,
                  prune: bool = False) -> ApplySummary:
    """Upsert a validated catalog over the one in force, all or nothing.

    Entities absent from the file stay, or with `prune` are archived (never deleted).
    The merged catalog is validated as a whole (e.g. a new subscription may not overlap
    one applied earlier on the same meters). Applying the same file again changes nothing.
    """
    with uow:
        stored = uow.catalog.latest()
        top, archived, sections = _merge(stored.catalog if stored else None,
                                         stored.archived if stored else {}, catalog, prune)
        problems = Problems()
        check_whole(top, sections, problems)
        if problems.items:
            raise CatalogError(problems.items, source)
        merged = Catalog(**top, **{name: tuple(item for _, item in items)
                                   for name, items in sections.items()})
        document = catalog_document(merged, archived)
        changed = stored is None or document_digest(document) != document_digest(
            catalog_document(stored.catalog, stored.archived))
        version = None
        if changed:
            now = clock.now()
            version = uow.catalog.add_version(document, source, now)
            uow.catalog.sync_rows(merged, archived, now)
        uow.commit()
    return ApplySummary(
        meters=len(catalog.meters), products=len(catalog.products),
        charges=sum(len(p.charges) for p in catalog.products),
        customers=len(catalog.customers), subscriptions=len(catalog.subscriptions),
        archived={name: len(items) for name, items in archived.items()},
        version=version, changed=changed)
