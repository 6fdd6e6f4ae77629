"""Rendering documents in batches, in this process or in worker processes.

WeasyPrint is CPU-bound and not thread-parallel, so rendering scales out over processes.
Each process keeps one PdfRenderer (one FontConfiguration, one parsed stylesheet) for every
batch it is given; a batch is a list of render jobs, so a pool or a cluster sees a few
dozen work items per run, not one per document.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from billing_core.errors import describe
from billing_core.failpoints import failpoint
from billing_core.render.files import write_document_files
from billing_core.render.pdf import PdfRenderer

T = TypeVar("T")

MAX_BATCH = 50
_renderer: PdfRenderer | None = None


@dataclass(frozen=True)
class RenderJob:
    """Write `content` (a stored JSON document) as <base>.json, .html and .pdf."""

    document_id: int
    content: str
    base: str


@dataclass(frozen=True)
class Rendered:
    """A job's outcome: the files' hashes, or why it could not be rendered."""

    document_id: int
    hashes: dict[str, str]
    error: str | None = None
    base: str = ""


def process_renderer() -> PdfRenderer:
    """This process's renderer, created on first use and kept for later batches."""
    global _renderer
    if _renderer is None:
        _renderer = PdfRenderer()
    return _renderer


def render_batch(jobs: Sequence[RenderJob]) -> list[Rendered]:
    """Write each job's files with this process's renderer, in order."""
    renderer = process_renderer()
    done = []
    for job in jobs:
        try:
            hashes = write_document_files(job.content, Path(job.base), renderer)
        except Exception as exc:  # one document that cannot be rendered costs no other
            done.append(Rendered(job.document_id, {}, describe(exc), job.base))
            continue
        done.append(Rendered(job.document_id, hashes, base=job.base))
        failpoint("render.after_document")
    return done


def split_batches(items: Sequence[T], workers: int, max_batch: int = MAX_BATCH) -> list[list[T]]:
    """Contiguous batches: about four per worker (so a slow batch does not leave a worker
    idle at the end), never more than `max_batch` items, never empty."""
    if not items:
        return []
    per_batch = max(1, min(max_batch, math.ceil(len(items) / (max(1, workers) * 4))))
    return [list(items[i:i + per_batch]) for i in range(0, len(items), per_batch)]


def render_in_processes(jobs: Sequence[RenderJob], workers: int) -> list[Rendered]:
    """Render every job in `workers` fresh processes (spawned, so no state is inherited
    from the caller; each builds its renderer as it starts); results in input order."""
    batches = split_batches(jobs, workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=process_renderer) as pool:
        return [item for batch in pool.map(render_batch, batches) for item in batch]
