"""Ingest progress: totals over files, the rate, and plain lines at most every N seconds."""

from billing_core.ingest.progress import LoggedProgress
from billing_core.services.ingest import Accounting, ingest_paths
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import CLOCK, apply, write_jsonl


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_throttled_and_total_every_file():
    ticks, lines = Ticks(), []
    progress = LoggedProgress(lines.append, every=10, clock=ticks)
    progress("/data/a.jsonl", Accounting(records=1000, ingested=990, rejected=10))
    assert lines == []                      # not 10 seconds yet
    ticks.now = 110.0
    progress("/data/a.jsonl", Accounting(records=2000, ingested=1980, rejected=20))
    progress("/data/b.jsonl", Accounting(records=500, ingested=500))
    assert lines == ["ingest: file 1 (a.jsonl): 2,000 records, 200/s, 1,980 ingested, "
                     "20 rejected so far"]
    ticks.now = 125.0
    progress("/data/b.jsonl", Accounting(records=1000, ingested=999, rejected=1))
    assert lines[-1] == ("ingest: file 2 (b.jsonl): 3,000 records, 120/s, 2,979 ingested, "
                         "21 rejected so far")


def test_ingest_reports_every_chunk(engine, issue_catalog, tmp_path):
    apply(engine, issue_catalog)
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": f"e{i}", "customer_id": "cus_acme", "event_name": "api.call"}
        for i in range(25)] + ["not json"])
    seen = []
    ingest_paths(SqlUnitOfWork(engine), [path], CLOCK, chunk_size=10,
                 progress=lambda p, a: seen.append((a.records, a.rejected)))
    assert seen == [(10, 0), (20, 0), (26, 1)]

