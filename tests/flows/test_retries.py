"""The flows' database retry policy, in real flow runs with real database errors."""

import pytest
from prefect import flow, task
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from flows.common import DB_TASK

pytestmark = pytest.mark.flow


def _real_error(kind: str, tmp_path) -> Exception:
    path = tmp_path / f"{kind}.db"
    holder = create_engine(f"sqlite:///{path}")
    other = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with holder.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        conn.commit()
        if kind == "locked":
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            with other.begin() as writer:
                writer.execute(text("INSERT INTO t VALUES (1)"))
        except Exception as exc:
            return exc
        finally:
            conn.rollback()
    raise AssertionError("no error raised")


@pytest.mark.parametrize(("kind", "attempts"), [("locked", 2), ("duplicate", 1)])
def test_only_transient_errors_are_retried(tmp_path, kind, attempts):
    error = _real_error(kind, tmp_path)
    assert isinstance(error, IntegrityError) == (kind == "duplicate")
    calls = []

    @task(**{**DB_TASK, "retry_delay_seconds": 0})
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "ok"

    @flow
    def run() -> str:
        return flaky()

    if kind == "locked":
        assert run() == "ok"
    else:
        with pytest.raises(IntegrityError):
            run()
    assert len(calls) == attempts
