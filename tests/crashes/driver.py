"""A billing process for the crash tests: runs one use case the way the flows do (lock,
run history, use case, render), without Prefect, so that a test can kill it at a
failpoint and run it again.

    python -m tests.crashes.driver finalize|draft PERIOD OUT_DIR
    python -m tests.crashes.driver ingest PATH
    python -m tests.crashes.driver issue PERIOD   (the use case alone, without the run lock)
    python -m tests.crashes.driver void-grant GRANT_ID
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from billing_core.clock import default_clock
from billing_core.db.engine import get_engine
from billing_core.periods import BillingPeriod
from billing_core.render.batch import stream_in_steps
from billing_core.services.drafting import draft_period
from billing_core.services.finalizing import finalize_period
from billing_core.services.ingest import ingest_paths
from billing_core.services.rendering import render_documents
from billing_core.services.runs import RunInProgress, billing_run
from billing_core.services.unit_of_work import SqlUnitOfWork


def main(argv: list[str]) -> int:
    uow, clock = SqlUnitOfWork(get_engine()), default_clock()
    command = argv[0]
    if command == "ingest":
        report = ingest_paths(uow, [argv[1]], clock)
        print(json.dumps(report.total.as_dict()))
        return 0
    if command == "void-grant":
        from billing_core.services.credits import void_grant

        print(json.dumps({"voided": str(void_grant(uow, clock, int(argv[1]), "test"))}))
        return 0
    if command == "issue":
        result = finalize_period(uow, clock, BillingPeriod.parse(argv[1]))
        print(json.dumps({"invoices": result.invoices}))
        return 0
    period, out = argv[1], Path(argv[2])
    try:
        with billing_run(uow, clock, command, period) as run:
            if command == "finalize":
                result = finalize_period(uow, clock, BillingPeriod.parse(period),
                                         run_id=run.run_id)
                print(json.dumps({"invoices": result.invoices}))
            else:
                draft_period(uow, clock, BillingPeriod.parse(period), run_id=run.run_id)
            render_documents(uow, clock, out, stream_in_steps, periods=[period], page=3)
    except RunInProgress as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
