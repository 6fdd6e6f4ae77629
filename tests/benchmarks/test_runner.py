"""The benchmark runner as CI runs it: a small month, every stage, no time asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).parents[2]
STAGES = ["ingest", "aggregate", "peer", "render", "render_parallel", "end_to_end"]


@pytest.mark.flow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_runner_reports_every_stage_beside_its_baseline(backend, tmp_path):
    if backend == "postgres" and not POSTGRES_URL:
        pytest.skip("BILLING_TEST_POSTGRES_URL is not set")
    db = "sqlite" if backend == "sqlite" else POSTGRES_URL
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--events", "3000", "--customers", "15",
         "--db", db, "--out", str(out), "--render-repeats", "2", "--parallel-invoices", "6"],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((out / "report.json").read_text())
    assert list(report["stages"]) == STAGES
    for name, stage in report["stages"].items():
        for key in ("seconds", "per_second", "baseline_per_second", "ratio"):
            assert stage[key] > 0, (name, key, stage)
        assert stage["ratio"] == pytest.approx(
            stage["per_second"] / stage["baseline_per_second"], rel=1e-2), name
        assert isinstance(stage["met"], bool)
    assert report["peak_rss_mb"] > 0

    params = report["params"]
    generated = params["generated"]
    assert params["accounting_matches"], (params["ingest_accounting"], generated)
    assert 0 < generated["duplicates"] < generated["events"] * 0.03
    assert generated["lines"] == generated["events"] + generated["duplicates"] + generated["bad"]
    assert params["database"].startswith("postgresql" if backend == "postgres" else "sqlite")
    # DuckDB, computing the same usage on its own from the files, agrees with our metering.
    assert report["stages"]["peer"]["extra"]["agrees"], report["stages"]["peer"]["extra"]
    e2e = report["stages"]["end_to_end"]["extra"]
    assert e2e["steps"]["invoices"] == 15
    # The machine's own two-process ceiling is measured beside the two-process render.
    ceiling = report["stages"]["render_parallel"]["extra"]["machine_two_process_speedup"]
    assert 0 < ceiling < 3
    assert report["stages"]["render_parallel"]["extra"]["pool_server_start_seconds"] >= 0
    # What the two floors reach against DuckDB: the bound on any path through this store.
    peer = report["stages"]["peer"]
    # (The report rounds seconds to 0.1 ms and a small run's stages take milliseconds, so
    # the figures are compared within that rounding.)
    floors = peer["extra"]["floors_seconds"]
    assert floors == pytest.approx(report["stages"]["ingest"]["baseline_seconds"]
                                   + report["stages"]["aggregate"]["baseline_seconds"],
                                   abs=2e-4)
    assert peer["extra"]["floors_ratio"] == pytest.approx(peer["baseline_seconds"] / floors,
                                                          rel=1e-3, abs=1e-4 / floors)
    # Both sides ran twice (direct, flow, flow, direct), and their means are compared.
    assert len(e2e["direct_seconds"]) == len(e2e["flow_seconds"]) == 2
    assert report["stages"]["end_to_end"]["seconds"] == pytest.approx(
        sum(e2e["flow_seconds"]) / 2, abs=1e-3)
    assert e2e["steps"]["draft"] + e2e["steps"]["render_all"] == pytest.approx(
        sum(e2e["direct_seconds"]) / 2)

    markdown = (out / "report.md").read_text()
    for name in STAGES:
        assert f"| {name} |" in markdown
    assert (out / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "data").exists()  # the generated files are removed unless kept


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_month_mode_runs_the_whole_month_and_renders_nothing_twice(backend, tmp_path):
    """(On SQLite with random UUIDv4 event ids, on PostgreSQL with ids counting up.)"""
    if backend == "postgres" and not POSTGRES_URL:
        pytest.skip("BILLING_TEST_POSTGRES_URL is not set")
    db = "sqlite" if backend == "sqlite" else POSTGRES_URL
    out = tmp_path / "month"
    ids = ["--random-ids"] if backend == "sqlite" else []
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--month", "--events", "3000",
         "--customers", "12", "--db", db, "--out", str(out), "--workers", "2", *ids],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "month.json").read_text())
    month = report["month"]
    assert list(month["stages"]) == ["ingest", "draft", "finalize", "render", "render_again"]
    assert report["params"]["accounting_matches"]
    assert report["params"]["event_ids"] == ("random UUIDv4" if ids else "counting up")
    assert month["counts"]["invoices"] == 12 and month["counts"]["rendered"] == 12
    assert month["counts"]["rendered_again"] == 0
    assert sum(s["share"] for s in month["stages"].values()) == pytest.approx(1.0)
    assert month["wall_seconds"] > 0 and month["peak_rss_mb"] > 0
    assert "| render |" in (out / "month.md").read_text()
