"""Billing runs: one at a time, recorded whatever their outcome, crashes detected.

`billing_run(...)` holds the billing lock for the whole run (drafting or finalizing any
period): a second run stops at once with a message naming the one in progress. The lock
is released by the operating system or the database when its holder dies, so a run killed
with kill -9 leaves only its `running` row behind; any command that reads the history
(or the next run) marks such rows `crashed`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from billing_core.clock import Clock
from billing_core.db import locks
from billing_core.db.engine import read_only_file
from billing_core.db.models import BillingRunRow
from billing_core.errors import describe
from billing_core.services.unit_of_work import SqlUnitOfWork

LOCK = "billing"


class RunInProgress(RuntimeError):
    """Another billing run holds the lock."""


@dataclass
class RunHandle:
    """The open run: the use cases put their counts in `values`."""

    run_id: int
    values: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"


def reap_crashed(uow: SqlUnitOfWork, clock: Clock) -> list[int]:
    """Mark as crashed every `running` run whose process is gone: the lock is free, or
    it is held by another run (a run names itself in the lease in the same transaction
    that records it). Returns their ids."""
    with uow.read():
        running = [r.id for r in uow.runs.running() if r.id is not None]
        lease = uow.leases.get(LOCK)
    if not running:
        return []
    live = lease.run_id if lease and locks.is_held(uow.engine, LOCK) else None
    dead = [run_id for run_id in running if run_id != live]
    if dead and not read_only_file(str(uow.engine.url)):
        with uow:
            uow.runs.mark_crashed(dead, clock.now())
            uow.commit()
    return dead


def _holder_message(uow: SqlUnitOfWork) -> str:
    with uow.read():
        lease = uow.leases.get(LOCK)
        run = uow.runs.get(lease.run_id) if lease and lease.run_id else None
    if run is None:
        return "another billing run is in progress; wait for it to finish (`billing runs`)"
    return (f"another billing run is in progress: run #{run.id} ({run.kind} {run.period}), "
            f"started {run.started_at:%Y-%m-%d %H:%M:%S} UTC by process {run.pid} on "
            f"{run.hostname}" + (f", flow run {run.flow_run_id}" if run.flow_run_id else "")
            + "; wait for it to finish (`billing runs`)")


@contextmanager
def billing_run(uow: SqlUnitOfWork, clock: Clock, kind: str, period: str,
                customers: list[str] | None = None, flow_run_id: str | None = None
                ) -> Iterator[RunHandle]:
    """Hold the billing lock, record a `running` run, and close it as completed (or with
    the handle's status) or failed with a one-line error."""
    try:
        lock = locks.exclusive(uow.engine, LOCK)
        lock.__enter__()
    except locks.LockBusy:
        raise RunInProgress(_holder_message(uow)) from None
    try:
        with uow:
            uow.runs.mark_crashed([r.id for r in uow.runs.running() if r.id is not None],
                                  clock.now())  # we hold the lock: nobody else is running
            run_id = uow.runs.start(kind=kind, period=period, customers=customers,
                                    flow_run_id=flow_run_id, started_at=clock.now(),
                                    pid=os.getpid(), hostname=socket.gethostname())
            uow.leases.take(LOCK, run_id, os.getpid(), socket.gethostname(), clock.now())
            uow.commit()
        handle = RunHandle(run_id)
        try:
            yield handle
        except BaseException as exc:
            with uow:
                uow.runs.finish(run_id, status="failed", ended_at=clock.now(),
                                error=describe(exc), **handle.values)
                uow.commit()
            raise
        with uow:
            uow.runs.finish(run_id, status=handle.status, ended_at=clock.now(),
                            **handle.values)
            uow.commit()
    finally:
        lock.__exit__(None, None, None)


def list_runs(uow: SqlUnitOfWork, clock: Clock, limit: int = 20,
              period: str | None = None) -> list[BillingRunRow]:
    """The latest runs, newest first, after marking dead `running` ones as crashed (shown
    crashed, not written, on a database this process may only read)."""
    dead = set(reap_crashed(uow, clock))
    with uow.read():
        rows = uow.runs.latest(limit, period)
    for row in rows:
        if row.id in dead and row.status == "running":
            row.status = "crashed"
    return rows
