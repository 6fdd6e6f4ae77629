#!/usr/bin/env bash
# Installs everything, then lints, type-checks and runs the tests. PostgreSQL tests run too
# when BILLING_TEST_POSTGRES_URL is set (.ci/run sets it); they fail if that server is down.
# Extra arguments go to pytest; the fast lane skips real servers, killed processes and
# wheel installs:  bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-180}"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
