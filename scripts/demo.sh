#!/usr/bin/env bash
# Installs everything, then runs the demo: apply the example catalog, generate a month of
# events (with bad lines and duplicates), ingest them, draft October 2026 as a Prefect flow
# run, finalize it (numbers, issue dates, files written once), and list the documents.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}"
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-WARNING}"
EVENTS="${DEMO_EVENTS:-300000}"
billing=.venv/bin/billing

echo "== 1. catalog"
$billing catalog apply examples/catalog.yaml
echo "== 2. generate ${EVENTS} events for October 2026"
.venv/bin/python examples/generate_events.py --period 2026-10 --events "$EVENTS" --out examples/data
echo "== 3. ingest"
$billing ingest examples/data
echo "== 4. draft 2026-10 (a Prefect flow run: drafts, no numbers yet)"
$billing run --period 2026-10 --out invoices
echo "== 5. finalize 2026-10 (a Prefect flow run: numbers, issue and due dates)"
$billing invoices finalize --period 2026-10 --out invoices
echo "== 6. the documents"
$billing invoices list --period 2026-10
echo
echo "Invoices (PDF, HTML, JSON): $PWD/invoices/2026-10/"
ls invoices/2026-10/*.pdf
