"""Shared pieces for the flows: the database, the clock, the retry policy, typed
parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from pydantic import AfterValidator, Field
from sqlalchemy import Engine

from billing_core.clock import Clock, default_clock
from billing_core.db.engine import get_engine
from billing_core.db.errors import is_transient
from billing_core.db.migrate import ensure_schema
from billing_core.periods import BillingPeriod
from billing_core.services.unit_of_work import SqlUnitOfWork


def _period(value: str) -> str:
    """A clear message for a bad period (a schema pattern would show its regex)."""
    return str(BillingPeriod.parse(value))


Period = Annotated[str, AfterValidator(_period), Field(examples=["2026-10"])]

P = ParamSpec("P")
R = TypeVar("R")

DB_RETRIES = 3
DB_RETRY_DELAYS: list[float] = [2, 10, 30]

# Billing tasks have side effects (rows, files) and must run every time; without this,
# Prefect would also hash every task's inputs (thousands of invoices) for a cache key.
NEVER_CACHE = {"cache_policy": NO_CACHE}


_migrated: set[str] = set()


def engine() -> Engine:
    """The database of BILLING_DATABASE_URL (default ./billing.db), migrated to the head
    (checked once per process and database)."""
    db = get_engine()
    url = str(db.url)
    if url not in _migrated:
        ensure_schema(db)
        _migrated.add(url)
    return db


def unit_of_work() -> SqlUnitOfWork:
    return SqlUnitOfWork(engine())


def clock() -> Clock:
    """The system clock, or BILLING_NOW when set (tests, demos)."""
    return default_clock()


def retry_on_transient_db_error(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry only lost connections, locks and the like."""
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # the task's own exception, re-raised by result()
        return is_transient(exc)
    return False


DB_TASK: dict[str, Any] = {"retries": DB_RETRIES, "retry_delay_seconds": DB_RETRY_DELAYS,
                           "retry_condition_fn": retry_on_transient_db_error, **NEVER_CACHE}


def db_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that talks to the database: retried on transient errors only, never
    cached (it has side effects)."""
    return task(name=name, retries=DB_RETRIES, retry_delay_seconds=DB_RETRY_DELAYS,
                retry_condition_fn=retry_on_transient_db_error, cache_policy=NO_CACHE)


def plain_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task with side effects (files) and no retries, never cached."""
    return task(name=name, cache_policy=NO_CACHE)
