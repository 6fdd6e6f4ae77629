"""Rendering documents in batches, in this process or in worker processes.

WeasyPrint is CPU-bound and not thread-parallel, so rendering scales out over processes.
Each process keeps one PdfRenderer (one FontConfiguration, one parsed stylesheet) for every
batch it is given; a batch is a list of render jobs, so a pool or a cluster sees a few
dozen work items per run, not one per document.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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


def end_with_parent(parent: int) -> None:
    """Make this process end when `parent` does, however it ends (kill -9 included), so
    no orphaned worker keeps rendering a batch nobody will collect. Linux asks the
    kernel (PR_SET_PDEATHSIG); a parent already gone by then ends the worker at once."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


def start_worker(parent: int) -> None:
    """A pool worker's first step: tie its life to the parent's, build its renderer."""
    end_with_parent(parent)
    process_renderer()


def split_batches(items: Sequence[T], workers: int, max_batch: int = MAX_BATCH) -> list[list[T]]:
    """Contiguous batches: about four per worker (so a slow batch does not leave a worker
    idle at the end), never more than `max_batch` items, never empty."""
    if not items:
        return []
    per_batch = max(1, min(max_batch, math.ceil(len(items) / (max(1, workers) * 4))))
    return [list(items[i:i + per_batch]) for i in range(0, len(items), per_batch)]


Progress = Callable[[int, int], None]     # (documents done, of documents)


def render_in_steps(jobs: Sequence[RenderJob], progress: Progress | None = None
                    ) -> list[Rendered]:
    """`render_batch` in this process, telling `progress` after every batch."""
    done: list[Rendered] = []
    for batch in split_batches(jobs, 1, MAX_BATCH):
        done.extend(render_batch(batch))
        if progress is not None:
            progress(len(done), len(jobs))
    return done


def render_in_processes(jobs: Sequence[RenderJob], workers: int,
                        progress: Progress | None = None) -> list[Rendered]:
    """Render every job in `workers` fresh processes (spawned, so no state is inherited
    from the caller; each builds its renderer as it starts); results in input order,
    `progress` told as batches come back."""
    batches = split_batches(jobs, workers)
    context = multiprocessing.get_context("spawn")
    done: list[Rendered] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=start_worker, initargs=(os.getpid(),)) as pool:
        for batch in pool.map(render_batch, batches):
            done.extend(batch)
            if progress is not None:
                progress(len(done), len(jobs))
    return done


_watchers: list[Callable[[int, int], None]] = []


@contextmanager
def watching_renders(watcher: Callable[[int, int], None]) -> Iterator[None]:
    """Tell `watcher(done, total)` of every render progress reported in this process
    while the block runs (a terminal's progress bar around a flow run)."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)


class LoggedRenderProgress:
    """'rendered 150 of 10,000 documents (12.3/s)' through `emit`, at most every `every`
    seconds, and once at the end; every report also goes to the watchers."""

    def __init__(self, emit: Callable[[str], None], every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.every, self.clock = emit, every, clock
        self.started = self.last = clock()

    def __call__(self, done: int, total: int) -> None:
        for watcher in list(_watchers):
            watcher(done, total)
        now = self.clock()
        if now - self.last >= self.every or done == total:
            self.last = now
            elapsed = now - self.started
            rate = f" ({done / elapsed:,.1f}/s)" if elapsed > 0 else ""
            self.emit(f"rendered {done:,} of {total:,} documents{rate}")
