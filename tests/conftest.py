"""Fixtures: a migrated database per test on SQLite (a real file) and, when
BILLING_TEST_POSTGRES_URL is set, on PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

# Prefect reads its settings at import: an isolated home, no analytics, a patient start.
_PREFECT_HOME = tempfile.mkdtemp(prefix="billflow-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from billing_core.catalog import Catalog, load_catalog_file, parse_catalog  # noqa: E402
from billing_core.catalog.yaml_loader import load_yaml  # noqa: E402
from billing_core.clock import FixedClock  # noqa: E402
from billing_core.db.engine import get_engine  # noqa: E402
from billing_core.db.migrate import upgrade  # noqa: E402
from billing_core.services import ingest as ingest_service  # noqa: E402
from billing_core.services.catalog import apply_catalog  # noqa: E402
from billing_core.services.catalog import load_catalog as load_stored_catalog  # noqa: E402
from billing_core.services.metering import measure_period as measure_service  # noqa: E402
from billing_core.services.unit_of_work import SqlUnitOfWork  # noqa: E402

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[1] / "examples"
POSTGRES_URL = os.environ.get("BILLING_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"]


def _postgres_schema_url(base: str) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        raise RuntimeError(f"BILLING_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: "
                           f"{exc}") from exc
    finally:
        admin.dispose()
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'billing.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("BILLING_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_schema_url(POSTGRES_URL)
    yield url
    get_engine(url).dispose()
    _drop_schema(POSTGRES_URL, schema)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated, empty database."""
    db = get_engine(db_url)
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def issue_catalog() -> Catalog:
    return load_catalog_file(DATA / "issue_catalog.yaml")


@pytest.fixture
def demo_catalog() -> Catalog:
    return load_catalog_file(EXAMPLES / "catalog.yaml")


# November 10, 2026: October is closed and past its grace period.
CLOCK = FixedClock(datetime(2026, 11, 10, 12, 0, 0))


def uow(engine: Engine) -> SqlUnitOfWork:
    return SqlUnitOfWork(engine)


def apply(engine: Engine, catalog: Catalog, prune: bool = False):
    """Apply a catalog as `billing catalog apply` does."""
    return apply_catalog(SqlUnitOfWork(engine), catalog, "test catalog", CLOCK, prune)


def ingest(engine: Engine, paths, clock=CLOCK, **options):
    """Ingest files as `billing ingest` does."""
    return ingest_service.ingest_paths(SqlUnitOfWork(engine), list(paths), clock, **options)


def list_quarantine(engine: Engine, status: str | None = "pending", limit: int | None = 100,
                    reason: str | None = None):
    return ingest_service.list_quarantine(SqlUnitOfWork(engine), status, limit, reason)


def replay_quarantine(engine: Engine):
    return ingest_service.replay_quarantine(SqlUnitOfWork(engine), CLOCK)


def load_catalog(engine: Engine) -> Catalog:
    return load_stored_catalog(SqlUnitOfWork(engine))


def measure_period(engine: Engine, catalog: Catalog, period, customers=None):
    return measure_service(SqlUnitOfWork(engine), period, customers, catalog)


@pytest.fixture
def acme(engine: Engine, issue_catalog: Catalog) -> Engine:
    """The database with the issue's example catalog applied."""
    apply(engine, issue_catalog)
    return engine


def catalog_document(**overrides) -> dict:
    document = load_yaml((DATA / "issue_catalog.yaml").read_bytes())
    document.update(overrides)
    return document


def catalog_with(**overrides) -> Catalog:
    """The issue's catalog document with top-level sections replaced."""
    return parse_catalog(catalog_document(**overrides))


def write_jsonl(path: Path, events: list[dict | str]) -> Path:
    """Write events (dicts, or raw line text) as JSON Lines."""
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n"
                            for e in events))
    return path


ROOT = Path(__file__).parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real `prefect server start` (UI, API, scheduler) on a free port, for the session.
    Yields the environment that points a process at it."""
    import signal
    import subprocess
    import time
    import urllib.request

    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_UI_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = open(home / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start",
                               "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start: "
                                   + (home / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield {"PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_UI_API_URL": api,
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
               "log": str(home / "server.log")}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
