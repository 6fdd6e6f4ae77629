"""Use case: write the files of documents that need them, and record what was written.

- A draft is rendered when its document or the templates changed since its last render,
  or a file is missing: DIR/<period>/drafts/<draft reference>.{json,html,pdf}.
- An issued document is rendered once, from its frozen JSON, to
  DIR/<period>/<number>.{json,html,pdf}, and the SHA-256 of each file is recorded; a
  document whose files are missing is rendered again (the same bytes; a difference, which
  only a template change can cause, is reported).
- When an invoice is issued, its draft's files are removed; so are the files of drafts
  that no longer exist.

Rendering itself is a function given by the caller (in this process, a process pool, a
Dask cluster). It is given the jobs as a lazy, sized source that reads the documents'
contents a page at a time, and its outcomes are recorded a page at a time, each page in
its own transaction: memory does not grow with the number of documents, and a run killed
part-way keeps the pages it recorded (a run again renders only the rest). No transaction
is open while documents render.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billing_core.clock import Clock
from billing_core.db.models import DocumentRow
from billing_core.db.repositories.documents import DocumentHead
from billing_core.failpoints import failpoint
from billing_core.render.batch import JobSource, Rendered, RenderJob
from billing_core.render.files import SUFFIXES, document_paths, remove_leftovers
from billing_core.render.html import templates_fingerprint
from billing_core.services.unit_of_work import SqlUnitOfWork

Renderer = Callable[[JobSource], Iterable[Rendered]]

PAGE = 200   # documents whose contents are read, and whose outcomes are recorded, at once


@dataclass
class RenderReport:
    rendered: int = 0
    skipped: int = 0
    differing: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def draft_key(row: DocumentRow | DocumentHead) -> str:
    return hashlib.sha256(f"{row.document_hash}:{templates_fingerprint()}".encode()
                          ).hexdigest()


def document_base(out_dir: Path, row: DocumentRow | DocumentHead) -> Path:
    folder = out_dir.resolve() / row.period
    if row.status == "draft":
        return folder / "drafts" / (row.draft_ref or f"draft-{row.id}")
    return folder / (row.number or f"document-{row.id}")


def _missing(base: Path) -> bool:
    return any(not path.exists() for path in document_paths(base).values())


@dataclass(frozen=True)
class Planned:
    """A document to render, where its files go, and whether it was a draft."""

    document_id: int
    base: str
    draft: bool


def plan_renders(uow: SqlUnitOfWork, out_dir: Path, *, periods: Iterable[str] = (),
                 document_ids: Iterable[int] = ()) -> tuple[list[Planned], int, set[str]]:
    """The documents to render, how many need none, and the periods seen."""
    with uow.read():
        rows: dict[int, DocumentHead] = {}
        for row in uow.documents.needing_files_heads():
            rows[row.id] = row
        for period in sorted(set(periods)):
            for row in uow.documents.period_heads(period):
                rows[row.id] = row
        for row in uow.documents.heads(i for i in document_ids if i not in rows):
            rows[row.id] = row
    needed, skipped = [], 0
    for row in sorted(rows.values(), key=lambda r: (r.period, r.kind, r.id)):
        base = document_base(out_dir, row)
        if row.status == "draft":
            wanted = row.rendered_key != draft_key(row) or _missing(base)
        else:
            wanted = row.file_hashes is None or _missing(base)
        if wanted:
            needed.append(Planned(row.id, str(base), row.status == "draft"))
        else:
            skipped += 1
    return needed, skipped, {row.period for row in rows.values()}


class PagedJobs:
    """The planned documents as render jobs, their contents read `page` at a time (one
    short read transaction each). A document deleted since planning (a draft replaced)
    or issued since (its files belong elsewhere) is left for the next render; the hash
    of each content read is kept for `record_renders`."""

    def __init__(self, uow: SqlUnitOfWork, planned: Sequence[Planned], page: int = PAGE
                 ) -> None:
        self.uow, self.planned, self.page = uow, planned, max(1, page)
        self.read_hashes: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.planned)

    def __iter__(self) -> Iterator[RenderJob]:
        for start in range(0, len(self.planned), self.page):
            page = self.planned[start:start + self.page]
            with self.uow.read():
                sources = self.uow.documents.render_sources(p.document_id for p in page)
            for item in page:
                found = sources.pop(item.document_id, None)
                if found is None or (found[2] == "draft") != item.draft:
                    continue
                content, digest, _ = found
                self.read_hashes[item.document_id] = digest
                yield RenderJob(item.document_id, content, item.base)


def record_renders(uow: SqlUnitOfWork, clock: Clock, rendered: Sequence[Rendered],
                   report: RenderReport, read_hashes: dict[int, str]) -> None:
    """Record the files' hashes (issued) or the render key (drafts), in one transaction.
    A document that changed after its content was read (`read_hashes`: a draft revised,
    or issued, by another run meanwhile) gets nothing recorded, so the next render
    writes it again."""
    with uow:
        heads = {h.id: h for h in uow.documents.heads(item.document_id for item in rendered)}
        drafts: list[dict[str, Any]] = []
        issued: list[dict[str, Any]] = []
        now = clock.now()
        for item in rendered:
            row = heads.get(item.document_id)
            if row is None:
                continue
            if item.error is not None:
                report.failures.append({
                    "subscription": row.subscription_id, "customer": row.customer_id,
                    "period": row.period, "document": row.number or row.draft_ref or "",
                    "reason": f"could not be rendered: {item.error}"})
                continue
            report.rendered += 1
            report.paths.append(str(document_paths(Path(item.base))["pdf"]))
            if read_hashes.get(row.id) != row.document_hash:
                continue
            if row.status == "draft":
                drafts.append({"id": row.id, "rendered_key": draft_key(row)})
            elif row.file_hashes is None:
                issued.append({"id": row.id, "file_hashes": item.hashes,
                               "files_dir": str(Path(item.base).parent), "updated_at": now})
            elif row.file_hashes != item.hashes:
                report.differing.append(row.number or str(row.id))
        uow.documents.change_many(drafts)
        uow.documents.change_many(issued)
        uow.commit()


def tidy_drafts(uow: SqlUnitOfWork, out_dir: Path, periods: Iterable[str]) -> int:
    """Remove files of drafts that were issued or no longer exist, and temporary files a
    killed writer left behind; returns how many."""
    removed = 0
    for period in sorted(set(periods)):
        removed += remove_leftovers(out_dir.resolve() / period)
        folder = out_dir.resolve() / period / "drafts"
        removed += remove_leftovers(folder)
        if not folder.is_dir():
            continue
        with uow.read():
            current = {r.draft_ref for r in uow.documents.draft_heads([period])}
        for path in folder.iterdir():
            if path.suffix.lstrip(".") in (*SUFFIXES, "xml") and path.stem not in current:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def render_documents(uow: SqlUnitOfWork, clock: Clock, out_dir: Path, render: Renderer, *,
                     periods: Iterable[str] = (), document_ids: Iterable[int] = (),
                     page: int = PAGE) -> RenderReport:
    """Plan, render (with `render`) and record a page at a time, then tidy drafts' files."""
    periods = list(periods)
    planned, skipped, seen = plan_renders(uow, out_dir, periods=periods,
                                          document_ids=document_ids)
    report = RenderReport(skipped=skipped)
    jobs = PagedJobs(uow, planned, page)
    outcomes: list[Rendered] = []
    for item in (render(jobs) if planned else ()):
        outcomes.append(item)
        if len(outcomes) >= jobs.page:
            failpoint("render.before_record")
            record_renders(uow, clock, outcomes, report, jobs.read_hashes)
            outcomes = []
    failpoint("render.before_record")
    record_renders(uow, clock, outcomes, report, jobs.read_hashes)
    tidy_drafts(uow, out_dir, {*periods, *seen})
    return report
