"""Where documents render: in this process, a local process pool, or a Dask cluster.

Chosen per run (flow parameters) or by setting (environment, read at run time):

    BILLING_RUNNER        in-process (default) | processes | dask
    BILLING_WORKERS       processes in the local pool (default: CPU count); for Dask, the
                          number of workers to cut batches for (default 8)
    BILLING_DASK_ADDRESS  scheduler address of an existing cluster, e.g. tcp://10.0.0.5:8786
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal, get_args

from billing_core.render.batch import (
    JobSource,
    Progress,
    Rendered,
    RenderJob,
    cut_batches,
    render_batch,
    stream_in_processes,
    stream_in_steps,
)
from billing_core.services.rendering import Renderer
from flows.common import plain_task

Runner = Literal["in-process", "processes", "dask"]
RUNNERS: tuple[str, ...] = get_args(Runner)
DASK_DEFAULT_WORKERS = 8


class RunnerSettingError(ValueError):
    """The runner settings cannot work (unknown runner, Dask without an address...)."""


@dataclass(frozen=True)
class RenderPlan:
    runner: Runner
    workers: int
    dask_address: str | None = None

    def describe(self) -> str:
        if self.runner == "in-process":
            return "in this process"
        if self.runner == "processes":
            return f"in a local pool of {self.workers} process(es)"
        return f"on the Dask cluster at {self.dask_address}"

    def renderer(self, progress: Progress | None = None) -> Renderer:
        """The function that renders a list of jobs where this plan says (telling
        `progress` as documents are done, except on Dask, whose task runs show it)."""
        if self.runner == "in-process":
            return lambda jobs: stream_in_steps(jobs, progress)
        if self.runner == "processes":
            workers = self.workers
            return lambda jobs: (stream_in_steps(jobs, progress) if workers <= 1
                                 else stream_in_processes(jobs, workers, progress))
        return lambda jobs: render_on_dask(jobs, self)


def _int_setting(value: str | int | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise RunnerSettingError(f"{name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise RunnerSettingError(f"{name} must be at least 1, got {number}")
    return number


def resolve_plan(runner: str | None = None, workers: int | None = None,
                 dask_address: str | None = None) -> RenderPlan:
    """Arguments win over the BILLING_* settings; raises RunnerSettingError with the fix."""
    chosen = runner or os.environ.get("BILLING_RUNNER") or "in-process"
    if chosen not in RUNNERS:
        raise RunnerSettingError(f"runner {chosen!r} is not one of {', '.join(RUNNERS)} "
                                 f"(set by the flow parameter or BILLING_RUNNER)")
    count = (_int_setting(workers, "workers")
             or _int_setting(os.environ.get("BILLING_WORKERS"), "BILLING_WORKERS"))
    address = dask_address or os.environ.get("BILLING_DASK_ADDRESS") or None
    if chosen == "in-process":
        return RenderPlan("in-process", 1)
    if chosen == "processes":
        return RenderPlan("processes", count or os.cpu_count() or 1)
    if not address:
        raise RunnerSettingError("runner 'dask' needs the scheduler address of an existing "
                                 "cluster: the dask_address parameter or BILLING_DASK_ADDRESS")
    return RenderPlan("dask", count or DASK_DEFAULT_WORKERS, address)


@plain_task("render-document-batch")
def render_document_batch(jobs: list[RenderJob]) -> list[Rendered]:
    """One batch of documents, rendered on a Dask worker with that worker's renderer."""
    return render_batch(jobs)


def render_on_dask(jobs: JobSource, plan: RenderPlan) -> Iterator[Rendered]:
    """Batches as Prefect tasks on an existing Dask cluster (files land where the jobs say,
    as the workers see it: give them a shared folder). As with the local pool, jobs are
    read as batches are handed out, at most two batches per worker are in flight, and
    outcomes come back as batches finish, so the caller records them a page at a time."""
    from distributed import as_completed
    from prefect_dask import DaskTaskRunner

    batches = cut_batches(jobs, plan.workers, shrinking=True)
    with DaskTaskRunner(address=plan.dask_address) as runner:
        running: dict[Any, Any] = {}   # the Dask future -> its Prefect future

        def submit(batch: list[RenderJob]) -> Any:
            future = runner.submit(render_document_batch, {"jobs": batch})
            running[future.wrapped_future] = future
            return future.wrapped_future

        first = [submit(batch) for batch in islice(batches, 2 * plan.workers)]
        if not first:
            return
        finishing = as_completed(first, loop=first[0].client.loop)
        try:
            for finished in finishing:
                for batch in islice(batches, 1):
                    finishing.add(submit(batch))
                yield from running.pop(finished).result()
        finally:   # the caller stopped early: start no more batches
            for pending in running:
                pending.cancel()
