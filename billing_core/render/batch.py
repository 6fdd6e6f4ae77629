"""Rendering documents in batches, in this process or in worker processes.

WeasyPrint is CPU-bound and not thread-parallel, so rendering scales out over processes.
Each process keeps one PdfRenderer (one FontConfiguration, one parsed stylesheet) for every
batch it is given; a batch is a list of render jobs, so a pool or a cluster sees a few
dozen work items per run, not one per document.

The `stream_*` functions take the jobs as a sized iterable read lazily (a caller can load
the documents' contents a page at a time) and yield outcomes as batches finish, so the
caller can record them as it goes: memory stays bounded by the batches in flight, and a
killed run keeps what it recorded.
"""

from __future__ import annotations

import ctypes
import gc
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from billing_core.errors import describe
from billing_core.failpoints import failpoint
from billing_core.render.files import write_document_files
from billing_core.render.pdf import PdfRenderer
from billing_core.render.stack_room import with_stack_room

if TYPE_CHECKING:   # ForkServerContext does not exist on Windows
    from multiprocessing.context import ForkServerContext, SpawnContext

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


class JobSource(Protocol):
    """Render jobs that know how many they are (a list, or a lazy loader)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[RenderJob]: ...


@contextmanager
def old_objects_frozen() -> Iterator[None]:
    """While a batch renders, the garbage collector leaves alone the objects that existed
    before it (`gc.freeze`, undone after), so its full collections scan only what the
    batch made. WeasyPrint makes many short-lived objects, and each full collection
    otherwise walks everything the process holds (Prefect, SQLAlchemy, the catalog).
    80 invoices, alternating: 8.0-8.1 s (1.0-1.1 s collecting) against 7.2-7.4 s (0.3 s)
    in a process with Prefect loaded; 7.4-7.5 s against 7.1 s in a fresh pool worker
    (docs/performance.md, eighth pass). Nothing becomes uncollectable: objects made
    during the batch are collected as usual, and the older ones are again after it. A
    process that froze objects itself is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def render_batch(jobs: Iterable[RenderJob]) -> list[Rendered]:
    """Write each job's files with this process's renderer, in order (see
    `old_objects_frozen` and `stack_room`)."""
    with old_objects_frozen():
        return with_stack_room(_render_each, jobs)


def _render_each(jobs: Iterable[RenderJob]) -> list[Rendered]:
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
    """Make this worker end when `parent` (the process that owns the pool) does, however
    it ends (kill -9 included), so no orphaned worker keeps rendering a batch nobody will
    collect. Under spawn `parent` is the worker's own parent, and Linux ends the worker
    with it (PR_SET_PDEATHSIG). Forked by the fork server, the worker watches `parent`
    from a thread that waits on it (`_watch`): the fork server outlives the pool's owner
    for as long as any worker does, so the worker cannot wait for its own parent. A worker
    whose `parent` is already gone ends at once."""
    own_parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if own_parent != parent:
        _watch(parent)
    if os.getppid() != own_parent or not _alive(parent):
        os._exit(1)


def _watch(pid: int) -> None:
    """A daemon thread that ends this process (SIGTERM) when process `pid` ends: it waits
    on a pidfd where Linux has them (no polling, no reused pid), else checks every half
    second."""
    import select
    import threading

    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        handle = None

    def wait() -> None:
        if handle is not None:
            select.select([handle], [], [])
        else:
            while _alive(pid):
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="end-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_worker(parent: int, environ: dict[str, str] | None = None) -> None:
    """A pool worker's first step: tie its life to the parent's, take the parent's
    environment as it was when the pool started (as a spawned worker would; the fork
    server's is older), build its renderer."""
    end_with_parent(parent)
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    process_renderer()


def preload() -> list[str]:
    """What the fork server imports once: the caller's main module (a script by its path,
    or the module run with -m by its name, whose imports its workers would otherwise each
    make again) and `pool_server`: this module, with WeasyPrint and the renderer's."""
    modules = ["__main__", "billing_core.render.pool_server"]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__" and not name.endswith(".__main__"):
        modules.append(name)
    return modules


def pool_context() -> ForkServerContext | SpawnContext:
    """Where pool workers come from: forked from Python's fork server, a fresh interpreter
    started once per process, which imports `preload()` once; each worker then starts in
    tens of milliseconds instead of importing everything again (about a second with
    spawn). No state of the caller is inherited: the fork server is not the caller.
    Spawn where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload())
    return context


def start_pool_server() -> None:
    """Start the fork server now, rather than with the first pool, and wait until it has
    imported its modules (once per process; about a second)."""
    context = pool_context()
    if context.get_start_method() == "forkserver":
        probe = context.Process(target=_nothing)
        probe.start()
        probe.join()


def _nothing() -> None:
    """A process that does nothing (forked to see the fork server ready)."""


def render_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` render processes (`pool_context`, `start_worker`)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(),
                               initializer=start_worker,
                               initargs=(os.getpid(), dict(os.environ)))


def batch_size(items: int, workers: int, max_batch: int = MAX_BATCH) -> int:
    """About four batches per worker (so a slow batch does not leave a worker idle at the
    end), never more than `max_batch` items in one."""
    return max(1, min(max_batch, math.ceil(items / (max(1, workers) * 4))))


def cut_batches(jobs: JobSource, workers: int, shrinking: bool = False
                ) -> Iterator[list[RenderJob]]:
    """`jobs` in contiguous batches of `batch_size` items, never empty, read lazily.
    `shrinking`: each batch sized for the jobs still to come (`batch_size` of the rest),
    so batches get smaller towards the end and the workers finish within about one
    document of each other, instead of one worker rendering a whole last batch while the
    other waits."""
    total, taken = len(jobs), 0
    source = iter(jobs)
    while batch := list(islice(source, batch_size(total - taken if shrinking else total,
                                                  workers))):
        taken += len(batch)
        yield batch


Progress = Callable[[int, int], None]     # (documents done, of documents)


def stream_in_steps(jobs: JobSource, progress: Progress | None = None
                    ) -> Iterator[Rendered]:
    """`render_batch` in this process, batch by batch, telling `progress` after each."""
    total, done = len(jobs), 0
    for batch in cut_batches(jobs, 1):
        outcomes = render_batch(batch)
        done += len(outcomes)
        if progress is not None:
            progress(done, total)
        yield from outcomes


def stream_in_processes(jobs: JobSource, workers: int, progress: Progress | None = None
                        ) -> Iterator[Rendered]:
    """Render every job in `workers` fresh processes (`pool_context`: no state is inherited
    from the caller; each builds its renderer as it starts). Batches shrink towards the
    end (`cut_batches`); at most two per worker are in flight: jobs are read as workers need
    them, outcomes yielded as batches finish (not in input order), `progress` told as
    they come back."""
    total, done = len(jobs), 0
    batches = cut_batches(jobs, workers, shrinking=True)
    with render_pool(workers) as pool:
        running: set[Future[list[Rendered]]] = set()
        try:
            for batch in islice(batches, 2 * workers):
                running.add(pool.submit(render_batch, batch))
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for batch in islice(batches, len(finished)):
                    running.add(pool.submit(render_batch, batch))
                for future in finished:
                    outcomes = future.result()
                    done += len(outcomes)
                    if progress is not None:
                        progress(done, total)
                    yield from outcomes
        finally:   # the caller stopped early (an error recording): start no more batches
            for future in running:
                future.cancel()


def render_in_steps(jobs: Sequence[RenderJob], progress: Progress | None = None
                    ) -> list[Rendered]:
    """`stream_in_steps`, as a list in input order."""
    return list(stream_in_steps(jobs, progress))


def render_in_processes(jobs: Sequence[RenderJob], workers: int,
                        progress: Progress | None = None) -> list[Rendered]:
    """`stream_in_processes`, as a list in input order."""
    order = {job.document_id: n for n, job in enumerate(jobs)}
    return sorted(stream_in_processes(jobs, workers, progress),
                  key=lambda item: order[item.document_id])


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
