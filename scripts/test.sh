#!/usr/bin/env bash
# Installs everything, then lints and runs the tests. PostgreSQL tests run too when
# BILLING_TEST_POSTGRES_URL is set (.ci/run sets it); they fail if that server is down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-180}"
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
