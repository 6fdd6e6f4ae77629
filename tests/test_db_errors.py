"""Which real database errors the flows retry."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from billing_core.db.errors import is_transient


def _error(engine, sql):
    with pytest.raises(Exception) as caught, engine.begin() as conn:
        conn.execute(text(sql))
    return caught.value


def test_lost_or_refused_connections_are_transient():
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none",
                         connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError) as caught:
        dead.connect()
    assert is_transient(caught.value)


def test_constraint_and_sql_errors_are_not(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO number_sequence (series, last_value) VALUES ('k', 1)"))
    duplicate = _error(engine, "INSERT INTO number_sequence (series, last_value) VALUES ('k', 1)")
    assert isinstance(duplicate, IntegrityError) and not is_transient(duplicate)
    bad_sql = _error(engine, "SELECT no_such_column FROM number_sequence")
    assert isinstance(bad_sql, OperationalError | ProgrammingError)
    assert not is_transient(bad_sql)
    assert not is_transient(None)


def test_a_locked_sqlite_database_is_transient(tmp_path):
    path = tmp_path / "locked.db"
    holder = create_engine(f"sqlite:///{path}")
    waiter = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with holder.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        error = _error(waiter, "INSERT INTO t VALUES (1)")
        conn.rollback()
    assert "locked" in str(error) and is_transient(error)
