"""Rendering invoices in batches, in this process or in worker processes.

WeasyPrint is CPU-bound and not thread-parallel, so rendering scales out over processes.
Each process keeps one PdfRenderer (one FontConfiguration, one parsed stylesheet) for every
batch it is given; a batch is a list of invoices, so a pool or a cluster sees a few dozen
work items per cycle, not one per invoice.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from billing_core.invoice import Invoice
from billing_core.render.files import write_invoice_files
from billing_core.render.pdf import PdfRenderer

T = TypeVar("T")

MAX_BATCH = 50
_renderer: PdfRenderer | None = None


def process_renderer() -> PdfRenderer:
    """This process's renderer, created on first use and kept for later batches."""
    global _renderer
    if _renderer is None:
        _renderer = PdfRenderer()
    return _renderer


def render_batch(invoices: Sequence[Invoice], out_dir: str | Path) -> list[str]:
    """Write HTML, PDF and JSON for each invoice with this process's renderer; returns the
    invoice numbers written, in order."""
    renderer = process_renderer()
    for invoice in invoices:
        write_invoice_files(invoice, Path(out_dir), renderer)
    return [invoice.invoice_number for invoice in invoices]


def split_batches(items: Sequence[T], workers: int, max_batch: int = MAX_BATCH) -> list[list[T]]:
    """Contiguous batches: about four per worker (so a slow batch does not leave a worker
    idle at the end), never more than `max_batch` items, never empty."""
    if not items:
        return []
    per_batch = max(1, min(max_batch, math.ceil(len(items) / (max(1, workers) * 4))))
    return [list(items[i:i + per_batch]) for i in range(0, len(items), per_batch)]


def render_in_processes(invoices: Sequence[Invoice], out_dir: str | Path,
                        workers: int) -> list[str]:
    """Render every invoice in `workers` fresh processes (spawned, so no state is
    inherited from the caller; each builds its renderer as it starts); returns the invoice
    numbers in input order."""
    batches = split_batches(invoices, workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=process_renderer) as pool:
        done = pool.map(render_batch, batches, [str(out_dir)] * len(batches))
        return [number for batch in done for number in batch]
