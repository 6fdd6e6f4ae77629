"""A real `prefect server start`: the deployments of prefect.yaml are created without a
single question in a terminal, the schedules create flow runs, and every parameter of the
run forms has a description."""

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.flow]
PREFECT = str(Path(sys.executable).parent / "prefect")


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    """Run a command with a pseudo-terminal as stdin/stdout (so it believes a person is
    there); fail if it does not finish by itself (it would be waiting for an answer)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower,
                               cwd=ROOT, env=env, close_fds=True)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    while process.poll() is None or select.select([leader], [], [], 0)[0]:
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("still running, waiting for input?\n"
                                 + output.decode(errors="replace")[-3000:])
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    process.wait()
    os.close(leader)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text


def test_deploy_all_asks_nothing_and_the_schedules_create_runs(prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = {**os.environ, **{k: v for k, v in prefect_server.items() if k != "log"},
           "TERM": "xterm"}
    subprocess.run([PREFECT, "work-pool", "create", "billing", "--type", "process"],
                   env=env, check=True, capture_output=True, cwd=ROOT)
    output = run_in_terminal([PREFECT, "--no-prompt", "deploy", "--all"], env)
    assert "Would you like" not in output and "[y/n]" not in output

    with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}), \
            get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        assert set(deployments) >= {"monthly", "finalize", "bill-cycle", "ingest-events",
                                    "preview-invoice"}

        # Every parameter shows a description in the run form.
        for deployment in deployments.values():
            schema = deployment.parameter_openapi_schema
            for name, prop in schema["properties"].items():
                assert prop.get("description"), (deployment.name, name)
        monthly_period = deployments["monthly"].parameter_openapi_schema["properties"][
            "period"]["description"]
        assert "Empty means the last closed month" in monthly_period

        # The schedules create runs: the 1st at 03:00 UTC (draft) and the 4th (finalize).
        deadline = time.monotonic() + 90
        while True:
            runs = {name: client.read_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[deployments[name].id])))
                for name in deployments}
            if all(len(runs[n]) >= 3 for n in ("monthly", "finalize")) \
                    or time.monotonic() > deadline:
                break
            time.sleep(2)
    log = Path(prefect_server["log"]).read_text()
    assert "Can't evaluate bulk DML" not in log
    for name, day in (("monthly", 1), ("finalize", 4)):
        scheduled = sorted(r.expected_start_time for r in runs[name]
                           if r.state and r.state.is_scheduled())
        assert len(scheduled) >= 3, (name, json.dumps([str(r.state) for r in runs[name]]))
        now = datetime.now(UTC)
        assert all(t > now and t.day == day and (t.hour, t.minute) == (3, 0)
                   and t.utcoffset().total_seconds() == 0 for t in scheduled), scheduled
    # The deployments without schedules create no runs by themselves.
    assert runs["bill-cycle"] == runs["ingest-events"] == runs["preview-invoice"] == []
