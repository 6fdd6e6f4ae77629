#!/usr/bin/env bash
# Installs everything, then runs the demo: apply the example catalog, generate a month of
# events (with bad lines and duplicates), ingest them, bill October 2026 as a Prefect flow
# run, and print where the invoices are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}"
EVENTS="${DEMO_EVENTS:-300000}"
billing=.venv/bin/billing

echo "== 1. catalog"
$billing catalog apply examples/catalog.yaml
echo "== 2. generate ${EVENTS} events for October 2026"
.venv/bin/python examples/generate_events.py --period 2026-10 --events "$EVENTS" --out examples/data
echo "== 3. ingest"
$billing ingest examples/data
echo "== 4. bill 2026-10 (a Prefect flow run)"
$billing run --period 2026-10 --out invoices
echo
echo "Invoices (HTML, PDF, JSON): $PWD/invoices/2026-10/"
ls invoices/2026-10/*.pdf
