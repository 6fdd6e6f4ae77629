"""Database and disk faults, and what reaches a person: one clear line, never a traceback
or an SQL statement with its parameters; read-only commands on a read-only database;
terminal escapes from input shown escaped."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from billing_cli.main import app
from billing_core.services.runs import billing_run, list_runs
from billing_core.services.unit_of_work import SqlUnitOfWork
from tests.conftest import CLOCK, DATA, POSTGRES_URL, ROOT, write_jsonl

runner = CliRunner()


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def events(path: Path, count: int, customer: str = "cus_acme") -> Path:
    return write_jsonl(path, [{"event_id": f"{path.stem}-{i}", "customer_id": customer,
                               "event_name": "api.call", "timestamp": "2026-10-05T00:00:00Z",
                               "metadata": {"method": "POST", "endpoint": "/v1/x",
                                            "note": "x" * 40}}
                              for i in range(count)])


def test_terminal_escapes_in_input_are_shown_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    cli("catalog", "apply", DATA / "issue_catalog.yaml")
    hostile = tmp_path / "x\x1b[31m.jsonl"
    hostile.write_text('{"event_id": "\x1b]0;pwned\x07\x1b[2J", "oops"\n'
                       '{"event_id": "e", "customer_id": "\x1b[2J\u202e", '
                       '"event_name": "x"}\n')
    ingested = cli("ingest", hostile)
    listed = cli("quarantine", "list")
    for output in (ingested.output, listed.output):
        assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in listed.output
    assert "\\u202e" in listed.output and "x\\x1b[31m.jsonl" in listed.output


def test_a_failed_run_stores_one_line_without_sql_or_parameters(engine):
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError), \
            billing_run(SqlUnitOfWork(engine), CLOCK, "draft", "2026-10"), \
            engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE secret = :p"), {"p": "hunter2"})
    [run] = list_runs(SqlUnitOfWork(engine), CLOCK)
    assert run.status == "failed" and run.error.startswith("database error (")
    assert "no_such_table" in run.error                     # the database's own words
    assert "[SQL" not in run.error and "hunter2" not in run.error and "\n" not in run.error


@pytest.mark.slow
def test_read_only_commands_work_on_a_read_only_database(tmp_path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to run the command as another user")
    folder = Path(tempfile.mkdtemp(prefix="billflow-ro-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        url = f"sqlite:///{folder / 'ro.db'}"
        env = {**os.environ, "BILLING_DATABASE_URL": url, "HOME": str(folder)}
        billing = [sys.executable, "-m", "billing_cli"]
        subprocess.run([*billing, "catalog", "apply", DATA / "issue_catalog.yaml"], env=env,
                       check=True, capture_output=True, cwd=ROOT)
        data = events(folder / "e.jsonl", 10)
        subprocess.run([*billing, "ingest", data], env=env, check=True, capture_output=True,
                       cwd=ROOT)
        for path in folder.iterdir():
            path.chmod(0o644)

        def as_nobody(*args):
            return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                   "--clear-groups", *billing, *map(str, args)], env=env,
                                  capture_output=True, text=True, cwd=ROOT, timeout=120)

        readable = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                   "--clear-groups", sys.executable, "-c", "import billing_cli"],
                                  env=env, capture_output=True, text=True, cwd=folder)
        if readable.returncode != 0:   # e.g. a clone inside a mode-700 temporary directory
            pytest.skip(f"user nobody cannot read this checkout: {readable.stderr.strip()}")
        for command in (["invoices", "list", "--json"], ["runs", "--json"],
                        ["quarantine", "list"], ["invoices", "show", "X"],
                        ["usage", "--customer", "cus_acme", "--from", "2026-10-01", "--to",
                         "2026-11-01", "--meter", "api_calls", "--json"]):
            done = as_nobody(*command)
            assert "Traceback" not in done.stderr, done.stderr
            if command[:2] == ["invoices", "show"]:
                assert done.returncode == 1 and "no invoice" in done.stderr
            else:
                assert done.returncode == 0, done.stderr
        usage = json.loads(as_nobody("usage", "--customer", "cus_acme", "--from",
                                     "2026-10-01", "--to", "2026-11-01", "--meter",
                                     "api_calls", "--json").stdout)
        assert usage[0]["quantity"] == "10"
        refused = as_nobody("ingest", events(folder / "more.jsonl", 3))
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and "readonly database" in refused.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_full_disk_is_one_clear_line_and_keeps_earlier_chunks(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode()}")
    try:
        env = {**os.environ, "BILLING_DATABASE_URL": f"sqlite:///{mount / 'full.db'}"}
        billing = [sys.executable, "-m", "billing_cli"]
        subprocess.run([*billing, "catalog", "apply", DATA / "issue_catalog.yaml"], env=env,
                       check=True, capture_output=True, cwd=ROOT)
        data = events(tmp_path / "many.jsonl", 60_000)
        done = subprocess.run([*billing, "ingest", data], env=env, capture_output=True,
                              text=True, cwd=ROOT, timeout=300)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and "[SQL" not in done.stderr
        assert "database or disk is full" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_postgresql_connection_lost_mid_ingest_is_retried(tmp_path):
    if not POSTGRES_URL:
        pytest.skip("BILLING_TEST_POSTGRES_URL is not set")
    from tests.conftest import _drop_schema, _postgres_schema_url

    url, schema = _postgres_schema_url(POSTGRES_URL)
    url += "&application_name=billflow-drop-test"
    try:
        env = {**os.environ, "BILLING_DATABASE_URL": url,
               "BILLING_FAILPOINT": "ingest.before_commit:2=sleep:4"}
        billing = [sys.executable, "-m", "billing_cli"]
        subprocess.run([*billing, "catalog", "apply", DATA / "issue_catalog.yaml"], env=env,
                       check=True, capture_output=True, cwd=ROOT)
        data = events(tmp_path / "many.jsonl", 50_000)        # three chunks
        process = subprocess.Popen([*billing, "ingest", data, "--json"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=ROOT)
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        killed = 0

        def kill_when_waiting() -> None:
            nonlocal killed
            deadline = time.monotonic() + 120
            while not killed and time.monotonic() < deadline:
                with admin.connect() as conn:
                    killed = len(conn.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "application_name = 'billflow-drop-test' AND "
                        "state = 'idle in transaction'")).all())
                time.sleep(0.3)

        watcher = threading.Thread(target=kill_when_waiting)
        watcher.start()
        out, err = process.communicate(timeout=300)
        watcher.join()
        admin.dispose()
        assert killed >= 1, "the chunk's connection was never caught waiting"
        assert process.returncode == 0, err
        assert json.loads(out) == {"records": 50_000, "ingested": 50_000, "duplicates": 0,
                                   "rejected": 0}
    finally:
        from billing_core.db.engine import get_engine

        get_engine(url).dispose()
        _drop_schema(POSTGRES_URL, schema)
