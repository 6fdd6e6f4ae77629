"""Batched rendering and the local process pool: same files, byte for byte."""

import json

import pytest

from billing_core.documents.model import to_json
from billing_core.render.batch import (
    RenderJob,
    cut_batches,
    old_objects_frozen,
    render_batch,
    render_in_processes,
)
from tests.render.test_render import make_invoice


@pytest.mark.parametrize("shrinking", [False, True])
@pytest.mark.parametrize(("items", "workers"), [(1, 1), (7, 2), (100, 2), (1000, 2), (5, 8)])
def test_batches_cover_every_item_once_in_order(items, workers, shrinking):
    batches = list(cut_batches(list(range(items)), workers, shrinking))
    assert [i for batch in batches for i in batch] == list(range(items))
    assert all(0 < len(batch) <= 50 for batch in batches)
    # enough batches to keep every worker busy, when there are enough items
    assert len(batches) >= min(items, workers * 4) or len(batches[0]) == 50


def test_no_items_no_batches():
    assert list(cut_batches([], 4)) == []


def jobs(catalog, folder, count):
    return [RenderJob(i, json.dumps(to_json(make_invoice(catalog, number=f"INV-2026-{i:06d}"))),
                      str(folder / f"INV-2026-{i:06d}")) for i in range(1, count + 1)]


def test_a_process_pool_writes_the_same_bytes_as_this_process(issue_catalog, tmp_path):
    here, pool = tmp_path / "here", tmp_path / "pool"
    done_here = render_batch(jobs(issue_catalog, here, 6))
    done_pool = render_in_processes(jobs(issue_catalog, pool, 6), workers=2)
    assert [d.document_id for d in done_here] == [d.document_id for d in done_pool] == \
        list(range(1, 7))
    assert [d.hashes for d in done_here] == [d.hashes for d in done_pool]
    written = sorted(p.relative_to(here) for p in here.rglob("*") if p.is_file())
    assert len(written) == 18
    assert written == sorted(p.relative_to(pool) for p in pool.rglob("*") if p.is_file())
    for path in written:
        assert (here / path).read_bytes() == (pool / path).read_bytes(), path


class Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self):
        self.me = self


def test_a_batch_renders_with_old_objects_frozen_and_leaves_the_collector_as_found(
        issue_catalog, tmp_path, monkeypatch):
    import gc
    import weakref

    import billing_core.render.batch as batch

    seen = []
    real = batch.write_document_files

    def watched(*args):
        seen.append(gc.get_freeze_count())
        return real(*args)

    monkeypatch.setattr(batch, "write_document_files", watched)
    broken = RenderJob(99, "not a document", str(tmp_path / "broken"))
    done = render_batch([*jobs(issue_catalog, tmp_path, 2), broken])
    assert [d.error is None for d in done] == [True, True, False]
    assert len(seen) == 3 and min(seen) > 0   # every document rendered with a freeze
    assert gc.get_freeze_count() == 0          # and undone after, a failure included

    old = Cycle()
    gone_old = weakref.ref(old)
    with old_objects_frozen():
        new = Cycle()
        gone_new = weakref.ref(new)
        del old, new
        gc.collect()
        assert gone_new() is None      # made during the batch: collected as usual
        assert gone_old() is not None  # older: left alone while the batch runs
    gc.collect()
    assert gone_old() is None          # and collected again after it


def test_a_process_that_froze_objects_itself_keeps_its_freeze():
    import gc

    # The count itself may fall while the block runs (a frozen object freed by reference
    # counting), so the test is that the block neither freezes again nor thaws.
    calls = []
    gc.freeze()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gc, "freeze", lambda: calls.append("freeze"))
            patch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
            with old_objects_frozen():
                pass
        assert calls == []
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


class CountedJobs:
    """A sized job source that counts how many jobs were read."""

    def __init__(self, jobs):
        self.jobs, self.read = jobs, 0

    def __len__(self):
        return len(self.jobs)

    def __iter__(self):
        for job in self.jobs:
            self.read += 1
            yield job


def test_a_process_pool_reads_jobs_as_workers_need_them():
    from billing_core.render.batch import stream_in_processes

    source = CountedJobs([RenderJob(i, "{}", f"/nonexistent/dir/{i}") for i in range(800)])
    read_at_first: list[int] = []
    seen: list[tuple[int, int]] = []
    done = []
    for item in stream_in_processes(source, workers=2, progress=lambda d, n: seen.append((d, n))):
        if not read_at_first:
            read_at_first.append(source.read)
        done.append(item)
    # two batches of 50 per worker in flight, and as many again for those just finished
    assert read_at_first[0] <= 400 < len(source)
    assert sorted(d.document_id for d in done) == list(range(800))
    assert all(d.error for d in done)
    assert seen[-1] == (800, 800)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})   # told once per batch
    ends = [d for d, _ in seen]
    sizes = [b - a for a, b in zip([0, *ends], ends, strict=False)]
    assert max(sizes) == 50 and min(sizes) == 1         # the batches shrank towards the end


def test_render_progress_is_told_after_every_batch_and_logged_at_the_end():
    from billing_core.render.batch import LoggedRenderProgress, render_in_steps

    jobs = [RenderJob(i, "{}", f"/nonexistent/dir/{i}") for i in range(3)]
    seen: list[tuple[int, int]] = []
    done = render_in_steps(jobs, lambda d, n: seen.append((d, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [d.document_id for d in done] == [0, 1, 2]
    assert all(d.error for d in done)       # a bad document costs no other
    ticks = iter([0.0, 1.0, 20.0, 21.0])
    lines: list[str] = []
    progress = LoggedRenderProgress(lines.append, every=10, clock=lambda: next(ticks))
    progress(50, 120)          # 1 s in: too soon
    progress(100, 120)         # 20 s in: a line
    progress(120, 120)         # the end: always a line
    assert lines == ["rendered 100 of 120 documents (5.0/s)",
                     "rendered 120 of 120 documents (5.7/s)"]


def _pool_processes(psutil, pid):
    """The processes under `pid` that the render pool made: its workers and the fork
    server they were forked from (a child that ends while it is looked at, such as a
    short-lived helper, is not one)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "forkserver" in line or "spawn_main" in line:
            found.append(child)
    return found


def _pool_workers(psutil, pid):
    """The pool's workers: the fork server's children (or, under spawn, the workers)."""
    found = []
    for process in _pool_processes(psutil, pid):
        try:
            if process.ppid() != pid or "spawn_main" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.slow
def test_pool_workers_end_when_their_parent_is_killed(issue_catalog, tmp_path):
    """kill -9 of the process that owns the pool: its workers and the fork server they
    came from do not go on rendering."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    (tmp_path / "jobs.json").write_text(json.dumps(
        [[j.document_id, j.content, j.base] for j in jobs(issue_catalog, tmp_path, 400)]))
    script = (
        "import json, sys\n"
        "from billing_core.render.batch import RenderJob, render_in_processes\n"
        "items = json.load(open(sys.argv[1]))\n"
        "render_in_processes([RenderJob(*i) for i in items], workers=2)\n")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "jobs.json")])
    try:
        deadline = time.monotonic() + 120
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline:   # wait until both workers are rendering
            workers = _pool_workers(psutil, parent.pid)
            if len(workers) == 2 and any(tmp_path.rglob("*.pdf")):
                break
            time.sleep(0.2)
        assert len(workers) == 2, f"the pool never started ({parent.poll()})"
        made = _pool_processes(psutil, parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        _, alive = psutil.wait_procs(made, timeout=30)
        assert not alive, f"orphaned workers still running: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()


def _worker_view(name):
    import os

    return os.getppid(), os.environ.get(name)


def test_pool_workers_come_from_one_fork_server_with_the_callers_environment(monkeypatch):
    """Every pool's workers are forked from the same fork server, not from the caller, and
    see the caller's environment as it is when their pool starts (set after the server
    started)."""
    import os

    from billing_core.render.batch import render_pool, start_pool_server

    start_pool_server()
    monkeypatch.setenv("BILLFLOW_POOL_PROBE", "first")
    with render_pool(1) as pool:
        first_parent, first_value = pool.submit(_worker_view, "BILLFLOW_POOL_PROBE").result()
    monkeypatch.setenv("BILLFLOW_POOL_PROBE", "second")
    with render_pool(2) as pool:
        seen = list(pool.map(_worker_view, ["BILLFLOW_POOL_PROBE"] * 4))
    assert first_value == "first" and {v for _, v in seen} == {"second"}
    assert first_parent != os.getpid() and {p for p, _ in seen} == {first_parent}
