"""bill_cycle's render runners for real: in-process, a local process pool, and a Dask
LocalCluster with two worker processes reached through prefect-dask. Same bytes from all."""

import os
from pathlib import Path

import pytest

from examples.generate_events import generate
from flows.render_runner import RenderPlan, RunnerSettingError, resolve_plan
from tests.conftest import apply, ingest

pytestmark = pytest.mark.flow


def test_plan_comes_from_arguments_then_settings(monkeypatch):
    for name in ("BILLING_RUNNER", "BILLING_WORKERS", "BILLING_DASK_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_plan() == RenderPlan("in-process", 1)
    assert resolve_plan("processes", 3) == RenderPlan("processes", 3)
    monkeypatch.setenv("BILLING_RUNNER", "dask")
    monkeypatch.setenv("BILLING_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    assert resolve_plan() == RenderPlan("dask", 8, "tcp://127.0.0.1:8786")
    assert resolve_plan("processes", 2) == RenderPlan("processes", 2)


@pytest.mark.parametrize(("args", "env", "message"), [
    (("threads",), {}, "not one of in-process, processes, dask"),
    (("dask",), {}, "needs the scheduler address"),
    (("processes", 0), {}, "at least 1"),
    ((), {"BILLING_RUNNER": "processes", "BILLING_WORKERS": "two"}, "whole number"),
])
def test_bad_runner_settings_say_what_to_fix(monkeypatch, args, env, message):
    for name in ("BILLING_RUNNER", "BILLING_WORKERS", "BILLING_DASK_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RunnerSettingError, match=message):
        resolve_plan(*args)


@pytest.fixture
def prefect_api(monkeypatch):
    """A local Prefect API whose address the Dask workers inherit (in ephemeral mode a
    worker process would otherwise start a server of its own)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=180)
    monkeypatch.setenv("PREFECT_API_URL", server.api_url)
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server.api_url


@pytest.fixture
def dask_cluster(prefect_api):
    from dask.distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    yield cluster
    cluster.close()


def files(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_dask_and_process_pool_render_the_same_invoices_byte_for_byte(
        db_url, engine, demo_catalog, tmp_path, monkeypatch, dask_cluster):
    """Finalize in this process; then a draft run with each other runner finds the issued
    invoices' files missing in its folder and renders them again: the same bytes."""
    from dask.distributed import Client
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    from flows.billing import bill_cycle
    from flows.finalize import finalize_invoices

    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    monkeypatch.setenv("BILLING_NOW", "2026-11-10T09:00:00Z")
    apply(engine, demo_catalog)
    ingest(engine, generate("2026-10", 3000, tmp_path / "events", seed=3))

    here = finalize_invoices(period="2026-10", out_dir=str(tmp_path / "here"),
                             runner="in-process")
    assert len(here["invoices"]) == 5 and here["rendered"] == 5
    pool = bill_cycle(period="2026-10", out_dir=str(tmp_path / "pool"), runner="processes",
                      workers=2)
    dask = bill_cycle(period="2026-10", out_dir=str(tmp_path / "dask"), runner="dask",
                      workers=2, dask_address=dask_cluster.scheduler_address)
    assert (pool["issued"], pool["rendered"], dask["issued"], dask["rendered"]) == (5, 5, 5, 5)

    expected = files(tmp_path / "here")
    # html, pdf and json of 5 invoices, and Globex's Factur-X XML (demo catalog)
    assert len(expected) == 16 and sum(p.suffix == ".xml" for p in expected) == 1
    assert files(tmp_path / "pool") == expected
    assert files(tmp_path / "dask") == expected

    # The batches ran on the cluster's two worker processes, each with its own renderer...
    with Client(dask_cluster.scheduler_address) as client:
        loaded = client.run(lambda: __import__("billing_core.render.batch", fromlist=["x"])
                            ._renderer is not None)
        pids = client.run(os.getpid)
    assert len(loaded) == 2 and any(loaded.values())
    assert os.getpid() not in pids.values()
    # ...as Prefect task runs of the flow run, recorded in the API.
    with get_client(sync_client=True) as api:
        runs = api.read_task_runs(task_run_filter=TaskRunFilter(
            name=TaskRunFilterName(like_="render-document-batch")))
    assert runs and all(r.state.is_completed() for r in runs)


def test_dask_reads_jobs_as_batches_are_handed_out(dask_cluster):
    """Like the local pool: at most two batches per worker in flight, the rest read as
    batches finish, every job's outcome back exactly once, batches shrinking at the end."""
    from billing_core.render.batch import RenderJob
    from flows.render_runner import render_on_dask
    from tests.render.test_batch import CountedJobs

    source = CountedJobs([RenderJob(i, "{}", f"/nonexistent/dir/{i}") for i in range(240)])
    plan = RenderPlan("dask", 2, dask_cluster.scheduler_address)
    read_at_first: list[int] = []
    done = []
    for item in render_on_dask(source, plan):
        if not read_at_first:
            read_at_first.append(source.read)
        done.append(item)
    # 240 jobs for 2 workers: batches of 30 and fewer; four in flight, one more read ahead
    assert read_at_first[0] <= 5 * 30 < len(source)
    assert sorted(d.document_id for d in done) == list(range(240))
    assert all(d.error for d in done)   # content "{}" is not a document
