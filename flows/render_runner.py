"""Where documents render: in this process, a local process pool, or a Dask cluster.

Chosen per run (flow parameters) or by setting (environment, read at run time):

    BILLING_RUNNER        in-process (default) | processes | dask
    BILLING_WORKERS       processes in the local pool (default: CPU count); for Dask, the
                          number of workers to cut batches for (default 8)
    BILLING_DASK_ADDRESS  scheduler address of an existing cluster, e.g. tcp://10.0.0.5:8786
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from billing_core.render.batch import (
    Progress,
    Rendered,
    RenderJob,
    render_batch,
    split_batches,
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


def render_on_dask(jobs: Iterable[RenderJob], plan: RenderPlan) -> list[Rendered]:
    """Batches as Prefect tasks on an existing Dask cluster (files land where the jobs say,
    as the workers see it: give them a shared folder). The jobs are all read before the
    batches are handed out; the outcomes are recorded a page at a time as usual."""
    from prefect_dask import DaskTaskRunner

    batches = split_batches(list(jobs), plan.workers)
    with DaskTaskRunner(address=plan.dask_address) as runner:
        futures = runner.map(render_document_batch, {"jobs": batches})
        return [item for future in futures for item in future.result()]
