"""Real processes killed with SIGKILL at exact points (failpoints), and runs that meet each
other, on SQLite and PostgreSQL.

A killed finalization is shown as crashed, and running it again completes the work with
the same numbers for the same invoices, no gaps, and files byte-identical to those of a
run that never crashed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from billing_core.db.engine import get_engine
from billing_core.db.migrate import upgrade
from billing_core.ingest.store import chunk_size_for
from billing_core.services.credits import grant_credit
from billing_core.services.runs import list_runs
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import (
    CLOCK,
    POSTGRES_URL,
    ROOT,
    _drop_schema,
    _postgres_schema_url,
    apply,
    ingest,
    parse_catalog,
    write_jsonl,
)

pytestmark = pytest.mark.slow
NOW = "2026-11-10T09:00:00Z"
CUSTOMERS = 8


def catalog():
    from tests.conftest import catalog_document

    doc = catalog_document()
    doc["customers"] = [{"id": f"cus_{i:02d}", "name": f"Customer {i}",
                         "email": f"c{i}@example.test"} for i in range(CUSTOMERS)]
    doc["subscriptions"] = [{"id": f"sub_{i:02d}", "customer": f"cus_{i:02d}",
                             "product": "pro", "start": "2026-01-01"}
                            for i in range(CUSTOMERS)]
    return parse_catalog(doc)


def events(folder: Path) -> Path:
    return write_jsonl(folder / "october.jsonl", [
        {"event_id": f"e{c}-{i}", "customer_id": f"cus_{c:02d}", "event_name": "api.call",
         "timestamp": "2026-10-15T10:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}}
        for c in range(CUSTOMERS) for i in range(900 + 60 * c)])


def prepare(url: str, folder: Path) -> None:
    """The catalog, October's events, and prepaid credits for half the customers (two
    grants each, applied in priority order when October is issued)."""
    engine = get_engine(url)
    upgrade(engine)
    apply(engine, catalog())
    folder.mkdir(parents=True, exist_ok=True)
    ingest(engine, [events(folder)])
    for c in range(0, CUSTOMERS, 2):
        grant_credit(SqlUnitOfWork(engine), CLOCK, f"cus_{c:02d}", Decimal("7.50"), "USD",
                     priority=10, reason="first")
        grant_credit(SqlUnitOfWork(engine), CLOCK, f"cus_{c:02d}", Decimal("100.00"), "USD",
                     expires=date(2027, 12, 31), reason="second")


def ledger(url: str) -> list[tuple]:
    """The credit ledger without its ids: what a run that never crashed also writes."""
    with get_engine(url).connect() as conn:
        return sorted(tuple(row) for row in conn.execute(text(
            "SELECT g.customer_id, g.name, l.kind, l.amount, l.reference FROM credit_ledger l "
            "JOIN credit_grant g ON g.id = l.grant_id")).all())


def drive(url: str, *args: str, failpoint: str | None = None,
          wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    env = {**os.environ, "BILLING_DATABASE_URL": url, "BILLING_NOW": NOW,
           "PYTHONPATH": str(ROOT)}
    env.pop("BILLING_FAILPOINT", None)
    if failpoint:
        env["BILLING_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "tests.crashes.driver", *args]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def issued(url: str) -> dict[str, str]:
    with get_engine(url).connect() as conn:
        return dict(conn.execute(text(
            "SELECT subscription_id, number FROM document WHERE kind = 'invoice' "
            "AND number IS NOT NULL")).all())


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def control_url(db_url, tmp_path):
    """A second, empty database of the same kind, for the run that never crashes."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'control.db'}"
        return
    url, schema = _postgres_schema_url(POSTGRES_URL)
    yield url
    get_engine(url).dispose()
    _drop_schema(POSTGRES_URL, schema)


@pytest.fixture
def control(control_url, tmp_path):
    prepare(control_url, tmp_path / "control-data")
    done = drive(control_url, "finalize", "2026-10", str(tmp_path / "control-out"))
    assert done.returncode == 0, done.stderr
    return issued(control_url), files(tmp_path / "control-out"), ledger(control_url)


@pytest.mark.parametrize("failpoint", [
    "draft.before_commit",          # while the drafts are being written
    "finalize.after_invoice:3",     # in the middle of numbering
    "finalize.before_commit",       # numbered, not committed
    "finalize.after_commit",        # numbered and committed, no file written
    "render.after_document:2",      # two of eight documents written
    "render.before_record",         # three files written, no hash recorded
    "render.before_record:3",       # two pages of three recorded, two files left
])
def test_a_killed_finalization_completes_when_run_again(db_url, tmp_path, control,
                                                        failpoint):
    expected_numbers, expected_files, expected_ledger = control
    prepare(db_url, tmp_path / "data")
    out = tmp_path / "out"
    killed = drive(db_url, "finalize", "2026-10", str(out), failpoint=failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    runs = list_runs(SqlUnitOfWork(get_engine(db_url)), CLOCK)
    assert [r.status for r in runs] == ["crashed"]
    assert "killed or crashed" in runs[0].error

    again = drive(db_url, "finalize", "2026-10", str(out))
    assert again.returncode == 0, again.stderr
    assert [r.status for r in list_runs(SqlUnitOfWork(get_engine(db_url)), CLOCK)] == \
        ["completed", "crashed"]
    assert issued(db_url) == expected_numbers
    assert sorted(expected_numbers.values()) == [f"INV-2026-{i:06d}"
                                                 for i in range(1, CUSTOMERS + 1)]
    assert files(out) == expected_files            # no leftovers, same bytes
    assert ledger(db_url) == expected_ledger        # each credit applied once
    assert any(kind == "apply" for _, _, kind, _, _ in expected_ledger)
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM document WHERE number IS NOT NULL "
                                 "AND file_hashes IS NULL")).scalar_one() == 0


def test_a_second_run_stops_at_once_naming_the_first(db_url, tmp_path):
    prepare(db_url, tmp_path / "data")
    first = drive(db_url, "finalize", "2026-10", str(tmp_path / "out"),
                  failpoint="finalize.before_commit=sleep:8", wait=False)
    engine = get_engine(db_url)
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            running = conn.execute(text("SELECT id, pid FROM billing_run "
                                        "WHERE status = 'running'")).first()
        if running or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert running, "the first run never started"
    started = time.monotonic()
    second = drive(db_url, "finalize", "2026-10", str(tmp_path / "out2"))
    assert time.monotonic() - started < 6            # it did not wait for the first
    assert second.returncode == 3
    assert f"run #{running.id} (finalize 2026-10)" in second.stderr
    assert f"process {running.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert len(json.loads(out)["invoices"]) == CUSTOMERS
    assert len(issued(db_url)) == CUSTOMERS


def test_two_ingests_of_the_same_file_at_once(db_url, tmp_path):
    engine = get_engine(db_url)
    upgrade(engine)
    apply(engine, catalog())
    path = events(tmp_path)                       # 9,680 events
    env = {**os.environ, "BILLING_DATABASE_URL": db_url}
    billing = str(Path(sys.executable).parent / "billing")
    both = [subprocess.Popen([billing, "ingest", str(path), "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [p.communicate(timeout=300) for p in both]
    for process, (_, err) in zip(both, results, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err
    counts = [json.loads(out) for out, _ in results]
    total = sum(900 + 60 * c for c in range(CUSTOMERS))
    assert all(c["records"] == total and c["rejected"] == 0 for c in counts)
    assert sum(c["ingested"] for c in counts) == total
    assert sum(c["duplicates"] for c in counts) == total
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM event")).scalar_one() == total


def test_a_killed_ingest_keeps_its_chunks_and_completes_when_run_again(db_url, tmp_path):
    engine = get_engine(db_url)
    upgrade(engine)
    apply(engine, catalog())
    chunk = chunk_size_for(engine.dialect.name)   # the default, as operators run it
    total = 2 * chunk + chunk // 4
    big = write_jsonl(tmp_path / "big.jsonl", [
        {"event_id": f"b{i}", "customer_id": "cus_01", "event_name": "api.call",
         "timestamp": "2026-10-15T10:00:00Z"} for i in range(total)])
    killed = drive(db_url, "ingest", str(big), failpoint="ingest.after_chunk:2")
    assert killed.returncode == -signal.SIGKILL
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM event")).scalar_one() == 2 * chunk
    again = drive(db_url, "ingest", str(big))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"records": total, "ingested": total - 2 * chunk,
                                        "duplicates": 2 * chunk, "rejected": 0}


@pytest.mark.flow
def test_a_killed_billing_run_from_the_command_line_is_shown_crashed(db_url, tmp_path,
                                                                      prefect_server):
    prepare(db_url, tmp_path / "data")
    env = {**os.environ, **{k: v for k, v in prefect_server.items() if k != "log"},
           "BILLING_DATABASE_URL": db_url, "BILLING_NOW": NOW,
           "BILLING_FAILPOINT": "draft.before_commit"}
    billing = str(Path(sys.executable).parent / "billing")
    killed = subprocess.run([billing, "run", "--period", "2026-10", "--out",
                             str(tmp_path / "out")], env=env, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    del env["BILLING_FAILPOINT"]
    shown = subprocess.run([billing, "runs", "--json"], env=env, capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    runs = json.loads(shown.stdout)
    assert [(r["kind"], r["status"]) for r in runs] == [("draft", "crashed")]
    again = subprocess.run([billing, "run", "--period", "2026-10", "--out",
                            str(tmp_path / "out")], env=env, capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"drafted 2026-10: {CUSTOMERS} draft(s) ({CUSTOMERS} new" in again.stdout


def test_two_finalizations_at_once_never_spend_a_grant_twice(db_url, tmp_path):
    """Two processes issue October and November at the same time, bypassing the run lock
    (the use case alone): each customer's grants are locked while an invoice takes from
    them, so the second sees what the first took."""
    prepare(db_url, tmp_path / "data")
    engine = get_engine(db_url)
    ingest(engine, [write_jsonl(tmp_path / "november.jsonl", [
        {"event_id": f"n{c}-{i}", "customer_id": f"cus_{c:02d}", "event_name": "api.call",
         "timestamp": "2026-11-15T10:00:00Z",
         "metadata": {"method": "POST", "endpoint": "/v1/x"}}
        for c in range(CUSTOMERS) for i in range(5000)])])
    env_now = "2026-12-10T09:00:00Z"
    runs = []
    for period, failpoint in (("2026-10", "finalize.before_commit=sleep:4"),
                              ("2026-11", None)):
        env = {**os.environ, "BILLING_DATABASE_URL": db_url, "BILLING_NOW": env_now,
               "PYTHONPATH": str(ROOT)}
        env.pop("BILLING_FAILPOINT", None)
        if failpoint:
            env["BILLING_FAILPOINT"] = failpoint
        runs.append(subprocess.Popen([sys.executable, "-m", "tests.crashes.driver", "issue",
                                      period], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True))
        time.sleep(2.5)        # the first holds its transaction open while the second starts
    for run in runs:
        _out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert len(issued_all(db_url)) == 2 * CUSTOMERS
    with engine.connect() as conn:
        per_grant = conn.execute(text(
            "SELECT g.id, g.amount, l.kind, l.amount FROM credit_grant g "
            "JOIN credit_ledger l ON l.grant_id = g.id ORDER BY l.id")).all()
    held: dict[int, Decimal] = {}
    applied = Decimal(0)
    for grant_id, _amount, kind, amount in per_grant:
        held[grant_id] = held.get(grant_id, Decimal(0)) + Decimal(amount)
        assert held[grant_id] >= 0, "a grant went below zero"
        if kind == "apply":
            applied -= Decimal(amount)
    # every customer with credits had more to pay than its 107.50: all of it was used once
    assert applied == Decimal("107.50") * (CUSTOMERS // 2)
    assert all(v == 0 for v in held.values())


def test_voiding_a_grant_while_an_invoice_takes_from_it_voids_only_what_is_left(db_url,
                                                                               tmp_path):
    """The invoice holds the customer's grants until it commits; the void waits and takes
    away only what the invoice left, so no grant goes below zero."""
    prepare(db_url, tmp_path / "data")
    env = {**os.environ, "BILLING_DATABASE_URL": db_url, "BILLING_NOW": NOW,
           "PYTHONPATH": str(ROOT)}
    env.pop("BILLING_FAILPOINT", None)
    issuing = subprocess.Popen(
        [sys.executable, "-m", "tests.crashes.driver", "issue", "2026-10"], cwd=ROOT,
        env={**env, "BILLING_FAILPOINT": "finalize.before_commit=sleep:5"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = get_engine(db_url)
    with engine.connect() as conn:
        second = conn.execute(text("SELECT id FROM credit_grant WHERE customer_id = 'cus_00' "
                                   "AND name = 'second'")).scalar_one()
    time.sleep(3.5)             # the issuing transaction is open, its entries not committed
    voiding = subprocess.run([sys.executable, "-m", "tests.crashes.driver", "void-grant",
                              str(second)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
    _out, err = issuing.communicate(timeout=300)
    assert issuing.returncode == 0, err
    assert voiding.returncode == 0, voiding.stderr
    with engine.connect() as conn:
        entries = [(kind, Decimal(amount)) for kind, amount in conn.execute(text(
            "SELECT kind, amount FROM credit_ledger WHERE grant_id = :g ORDER BY id"),
            {"g": second}).all()]
    # cus_00 owes the 49.00 base fee: 7.50 from its priority-10 grant, 41.50 from this one
    kinds = [kind for kind, _ in entries]
    assert kinds == ["grant", "apply", "void"], entries
    assert sum(amount for _, amount in entries) == 0
    assert json.loads(voiding.stdout) == {"voided": str(-entries[2][1])}


def issued_all(url: str) -> list[str]:
    with get_engine(url).connect() as conn:
        return [n for (n,) in conn.execute(text(
            "SELECT number FROM document WHERE kind = 'invoice' AND number IS NOT NULL"))]
